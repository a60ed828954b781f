"""YAML configs validated by pydantic, with `key.sub=value` overrides and one-line errors naming file and key."""

from __future__ import annotations

import re
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

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
        # pydantic's lax mode reads `max_steps: true` as 1, and `k: [true]` as [1]
        if info.field_name:
            scalar, in_list = _number_slots(cls.model_fields[info.field_name].annotation)
            values = [value] * scalar + (list(value) if in_list and isinstance(value, list) else [])
            if any(isinstance(v, bool) for v in values):
                raise ValueError(f"expected a number, got {str(value).lower()}")
        return value


def _number_slots(annotation: Any) -> tuple[bool, bool]:
    """(the field itself, the items of a list field) can hold a number but not a bool."""
    args = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    scalar = any(a in (int, float) for a in args) and bool not in args
    lists = [get_args(a) for a in args if get_origin(a) is list]
    in_list = any(set(items) & {int, float} and bool not in items for items in lists)
    return scalar, in_list


MERGE_TAG = "tag:yaml.org,2002:merge"


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; in a config that silently drops a whole section, so it is an error.
    Checked as each mapping is composed, before merge keys (`<<: *anchor`) are expanded: a key set again after a
    merge is an override, not a repeat."""

    def compose_mapping_node(self, anchor: str | None) -> yaml.MappingNode:
        node = super().compose_mapping_node(anchor)
        seen = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == MERGE_TAG:
                continue
            if (key_node.tag, key_node.value) in seen:
                raise yaml.composer.ComposerError(
                    problem=f"key {key_node.value!r} appears twice in one mapping",
                    problem_mark=key_node.start_mark,
                )
            seen.add((key_node.tag, key_node.value))
        return node


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
    except RecursionError:
        raise CodetuneError(f"override {key.strip()}=...: the value is nested too deeply") from None
    return keys, value


def _entry_index(items: list[Any], key: str) -> int | None:
    """The index of the entry of a list of sections (such as `arms`) that `key` names: by its `name` first (an
    entry may be named "0"), else by index; None when there is none."""
    names = [str(e.get("name")) if isinstance(e, dict) else None for e in items]
    if key in names:
        return names.index(key)
    if key.isdigit() and int(key) < len(items) and isinstance(items[int(key)], dict):
        return int(key)
    return None


def _list_item(items: list[Any], key: str, item: str) -> dict[str, Any]:
    i = _entry_index(items, key)
    if i is None:
        names = [str(e.get("name")) for e in items if isinstance(e, dict) and "name" in e]
        raise CodetuneError(f"override {item!r}: no entry {key!r} (names: {', '.join(names) or 'none'})")
    return items[i]


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Set `a.b.c=value` in nested sections; in a list of sections (such as `arms`) an entry is named by its `name`
    or index: `arms.deep.train.learning_rate=1e-4`."""
    for item in overrides or []:
        keys, value = parse_override(item)
        _set(data, keys, value, item)
    return data


def _set(data: dict[str, Any], keys: list[str], value: Any, item: str) -> None:
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


# "arms.deep.train: learning_rate: ...": an error a model validator re-rooted under its own path
_PATH_IN_MESSAGE = re.compile(r"^([\w.-]+): ([\w.-]+):")


def _where(err: ValidationError, data: Any = None) -> tuple[str, str]:
    """(dotted location, message) of the first error; a model validator's re-rooted message carries its own. With
    `data`, list entries that have a name are located by it (`arms.diverse.x`, not `arms.1.x`), as overrides name
    them."""
    first = err.errors()[0]
    loc = ".".join(_named(first["loc"], data))
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    if not loc and (m := _PATH_IN_MESSAGE.match(msg)):
        return f"{m[1]}.{m[2]}", msg
    return loc, f"{loc or '(top level)'}: {msg}"


def _named(loc: tuple[Any, ...], data: Any) -> list[str]:
    parts, node = [], data
    for part in loc:
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            name = node.get("name") if isinstance(node, dict) else None
            parts.append(str(name) if isinstance(name, str) and name and "." not in name else str(part))
        else:
            node = node.get(part) if isinstance(node, dict) else None
            parts.append(str(part))
    return parts


def format_validation_error(source: str, err: ValidationError, data: Any = None) -> str:
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{source}: {_where(err, data)[1]}{more}"


def validate(model: type[M], data: dict[str, Any], source: str, overrides: list[str] | None = None) -> M:
    """`model` from `data`; a bad value that an override set is blamed on the override, not on `source`. Where a
    text setting got a value that YAML read as something else from an override (`name=123`,
    `prompt_template=Problem: {input}`), the override's text is taken as written."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        if as_written := _texts_as_written(e, data, overrides):
            for item in as_written:
                keys, _ = parse_override(item)
                _set(data, keys, item.split("=", 1)[1], item)
            return validate(model, data, source, [o for o in overrides or [] if o not in as_written])
        loc = _where(e, data)[0]
        raise CodetuneError(
            format_validation_error(source_of(loc, source, overrides, data), e, data)
        ) from None


def _texts_as_written(err: ValidationError, data: Any, overrides: list[str] | None) -> list[str]:
    """The overrides that set exactly a value pydantic wanted as a string."""
    wanted = {
        _indexed(".".join(str(p) for p in e["loc"]), data) for e in err.errors() if e["type"] == "string_type"
    }
    return [o for o in overrides or [] if "=" in o and _indexed(o.split("=", 1)[0].strip(), data) in wanted]


def _indexed(key: str, data: Any) -> str:
    """`arms.deep.train.x` -> `arms.0.train.x`: an override's path as pydantic locates errors (list entries by index)."""
    parts, node = [], data
    for part in key.split("."):
        if isinstance(node, list):
            i = _entry_index(node, part)
            part, node = (part, None) if i is None else (str(i), node[i])
        else:
            node = node.get(part) if isinstance(node, dict) else None
        parts.append(part)
    return ".".join(parts)


def source_of(key: str, source: str, overrides: list[str] | None, data: Any = None) -> str:
    """Where the value of `key` came from: the last override that set it, a section above it or a key inside it
    (`-o train.lora.r.x=1` makes `train.lora.r` a section), else `source`. With `data`, list entries match by name or
    index alike (`arms.deep...` is `arms.0...`)."""
    key = _indexed(key, data)
    for item in reversed(overrides or []):
        path = _indexed(item.split("=", 1)[0].strip(), data)
        if key == path or key.startswith(path + ".") or (key and path.startswith(key + ".")):
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
