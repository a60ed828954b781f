"""Resolve a model spec (catalog name | .gguf file | local HF folder | hub id, optionally `@revision`) into a typed
source."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from codetune.errors import CodetuneError
from codetune.models.catalog import CATALOG

Kind = Literal["catalog", "gguf", "folder", "hub"]
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSource:
    spec: str
    kind: Kind
    path: Path | None = None  # gguf file or folder
    name: str | None = None  # catalog name or hub id
    revision: str | None = None  # hub id@revision: a branch, tag or commit of the hub repo


def split_revision(spec: str) -> tuple[str, str | None]:
    """`owner/name@revision` -> (`owner/name`, `revision`); anything else -> (spec, None)."""
    base, sep, rev = spec.rpartition("@")
    if sep and rev and HUB_ID.match(base) and not Path(spec).exists():
        return base, rev
    return spec, None


def resolve(spec: str) -> ModelSource:
    s = str(spec).strip()
    if not s:
        raise CodetuneError(
            f"empty model name; give a catalog name ({', '.join(sorted(CATALOG))}), a folder, a .gguf file or a hub id"
        )
    if s.lower() in CATALOG:
        return ModelSource(s, "catalog", name=s.lower())
    p = Path(s).expanduser()
    if s.lower().endswith(".gguf"):
        if not p.is_file():
            raise CodetuneError(f"{p}: GGUF file not found")
        return ModelSource(s, "gguf", path=p.resolve())
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise CodetuneError(f"{p}: not a model folder (no config.json)")
        return ModelSource(s, "folder", path=p.resolve())
    if p.exists():
        raise CodetuneError(f"{p}: not a model folder or a .gguf file")
    name, revision = split_revision(s)
    if HUB_ID.match(name) and not s.startswith((".", "/")):
        return ModelSource(s, "hub", name=name, revision=revision)
    known = ", ".join(sorted(CATALOG))
    raise CodetuneError(
        f"unknown model {s!r}: not a catalog name ({known}), an existing folder or .gguf file, or a hub id "
        "(owner/name, optionally @revision)"
    )


def check_named_model(spec: str, source: str) -> None:
    """`spec` must resolve; its error names `source` (a config file or an override) and the `model` key."""
    try:
        resolve(spec)
    except CodetuneError as e:
        raise CodetuneError(f"{source}: model: {e}") from None


def same_model(a: str, b: str) -> bool | None:
    """Whether two specs name the same model (a hub id's revision aside), or None when one does not resolve here."""

    def key(spec: str) -> tuple[str, str]:
        src = resolve(spec)
        return src.kind, str(src.path) if src.path is not None else (src.name or "").lower()

    try:
        return key(a) == key(b)
    except CodetuneError:
        return None
