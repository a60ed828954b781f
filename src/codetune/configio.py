"""YAML configs validated by pydantic, with `key.sub=value` overrides and one-line errors naming file and key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, ValidationInfo, field_validator

from codetune.errors import CodetuneError
from codetune.files import not_found

M = TypeVar("M", bound=BaseModel)


def _switch_word(value: Any) -> Any:
    # YAML 1.1 reads on/off/yes/no/true/false as booleans: `compile: on` in a file or `-o compile=on` means "on"
    return {True: "on", False: "off"}[value] if isinstance(value, bool) else value


Switch = Annotated[Literal["auto", "on", "off"], BeforeValidator(_switch_word)]
"""A three-way setting; YAML's booleans (on/off, true/false, yes/no) are read as "on" and "off"."""


class StrictModel(BaseModel):
    """Base for every config: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic's lax mode reads `max_steps: true` as 1
        if isinstance(value, bool) and info.field_name:
            kinds = set(get_args(cls.model_fields[info.field_name].annotation)) or {
                cls.model_fields[info.field_name].annotation
            }
            if kinds & {int, float} and bool not in kinds:
                raise ValueError(f"expected a number, got {str(value).lower()}")
        return value


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; in a config that silently drops a whole section, so it is an error."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    problem=f"key {key!r} appears twice in one mapping", problem_mark=key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CodetuneError(not_found(path, "config file"))
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except UnicodeDecodeError:
        raise CodetuneError(f"{path}: not valid UTF-8") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise CodetuneError(f"{path}: invalid YAML{where}: {getattr(e, 'problem', e)}") from None
    except RecursionError:
        raise CodetuneError(f"{path}: invalid YAML: nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CodetuneError(f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}")
    return data


def parse_override(item: str) -> tuple[list[str], Any]:
    """`train.lr=2e-4` -> (["train", "lr"], 2e-4). The value is parsed as YAML (numbers, bools, lists)."""
    if "=" not in item:
        raise CodetuneError(f"override {item!r}: expected KEY=VALUE, e.g. train.learning_rate=2e-4")
    key, raw = item.split("=", 1)
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise CodetuneError(f"override {item!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return keys, value


def _list_item(items: list[Any], key: str, item: str) -> dict[str, Any]:
    """An entry of a list of sections (such as `arms`), by its `name` or its index."""
    for i, entry in enumerate(items):
        if isinstance(entry, dict) and (entry.get("name") == key or str(i) == key):
            return entry
    names = [str(e.get("name")) for e in items if isinstance(e, dict) and "name" in e]
    raise CodetuneError(f"override {item!r}: no entry {key!r} (names: {', '.join(names) or 'none'})")


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Set `a.b.c=value` in nested sections; in a list of sections (such as `arms`) an entry is named by its `name`
    or index: `arms.deep.train.learning_rate=1e-4`."""
    for item in overrides or []:
        keys, value = parse_override(item)
        node: Any = data
        for k in keys[:-1]:
            nxt = _list_item(node, k, item) if isinstance(node, list) else node.get(k)
            if nxt is None:
                nxt = node[k] = {}
            if not isinstance(nxt, dict | list):
                raise CodetuneError(f"override {item!r}: {k} is not a section")
            node = nxt
        if isinstance(node, list):
            raise CodetuneError(
                f"override {item!r}: a whole entry of {keys[-2]} is not replaced; set its keys ({'.'.join(keys)}.KEY=VALUE)"
            )
        node[keys[-1]] = value
    return data


def format_validation_error(source: str, err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{source}: {loc}: {msg}{more}"


def validate(model: type[M], data: dict[str, Any], source: str, overrides: list[str] | None = None) -> M:
    """`model` from `data`; a bad value that an override set is blamed on the override, not on `source`."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        loc = ".".join(str(p) for p in e.errors()[0]["loc"])
        raise CodetuneError(format_validation_error(source_of(loc, source, overrides), e)) from None


def source_of(key: str, source: str, overrides: list[str] | None) -> str:
    """Where the value of `key` came from: the last override that set it (or a section above it), else `source`."""
    for item in reversed(overrides or []):
        given = item.split("=", 1)[0].strip()
        if key == given or key.startswith(given + "."):
            return f"override {item!r}"
    return source


def load_config(model: type[M], path: str | Path | None, overrides: list[str] | None = None) -> M:
    """Read `path` (or start from defaults), apply overrides, validate."""
    data = read_yaml(path) if path else {}
    apply_overrides(data, overrides)
    return validate(model, data, str(path) if path else "config", overrides)


def dump_config(cfg: BaseModel) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def with_defaults(model: type[BaseModel], data: Any) -> Any:
    """`data` (a saved config section) as `model` reads it today: settings added since it was written take their
    defaults. Data `model` cannot read is returned as it is."""
    try:
        return model.model_validate(data).model_dump(mode="json")
    except ValidationError:
        return data
