"""Read an arm's raw rows from the hub, a local .jsonl/.json/.parquet file or a shipped sample set."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from codetune.data.config import DataConfig
from codetune.errors import CodetuneError
from codetune.files import iter_jsonl, not_found, read_json
from codetune.hub import failure, go_offline_if_unreachable

BUILTIN = ("deep", "diverse")
LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")
CONVERSATION_COLUMNS = ("messages", "conversations", "conversation")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class Source:
    """Where rows came from: a name for error messages, the rows, and a fingerprint of the source."""

    name: str
    rows: list[dict[str, Any]]
    fingerprint: str


def builtin_path(name: str) -> Path:
    """Path of a shipped sample set (`deep` or `diverse`)."""
    if name not in BUILTIN:
        raise CodetuneError(f"builtin:{name}: unknown sample set (choose one of: {', '.join(BUILTIN)})")
    with resources.as_file(resources.files("codetune.data") / "samples" / f"{name}.jsonl") as p:
        return Path(p)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_local(path: Path) -> list[dict[str, Any]]:
    """Rows of a local .jsonl, .json (a list of objects) or .parquet file; every error names the file."""
    if not path.is_file():
        raise CodetuneError(
            f"{not_found(path)} (data.dataset must be a hub id, a local file or builtin:NAME)"
        )
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = list(iter_jsonl(path))
    elif suffix == ".json":
        data = read_json(path)
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise CodetuneError(f"{path}: expected a JSON list of objects (one per row)")
        rows = data
    elif suffix == ".parquet":
        rows = _read_parquet(path)
    else:
        raise CodetuneError(f"{path}: unsupported file type {suffix!r} (use {', '.join(LOCAL_SUFFIXES)})")
    if not rows:
        raise CodetuneError(f"{path}: no rows (the file is empty)")
    return rows


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as e:
        raise CodetuneError(f"{path}: not a readable Parquet file ({str(e).splitlines()[0][:160]})") from None


def read_hub(dataset_id: str, revision: str | None, split_column: str | None) -> list[dict[str, Any]]:
    """All rows of all hub splits. If the rows have no split column, the hub split name becomes one."""
    go_offline_if_unreachable()
    import datasets

    try:
        dd = datasets.load_dataset(dataset_id, revision=revision)
    except Exception as e:  # network, auth and missing-repo errors all come through here
        fix = "use a local .jsonl, .json or .parquet file, or builtin:deep / builtin:diverse"
        raise CodetuneError(f"{dataset_id}: {failure('could not load the hub dataset', e, fix)}") from None
    parts = dd.items() if isinstance(dd, dict) else [("train", dd)]
    rows: list[dict[str, Any]] = []
    for hub_split, part in parts:
        add_split = split_column is not None and split_column not in part.column_names
        for row in part:
            row = dict(row)
            if add_split:
                row[split_column] = hub_split
            rows.append(row)
    if not rows:
        raise CodetuneError(f"{dataset_id}: the hub dataset has no rows")
    return rows


def open_source(cfg: DataConfig) -> Source:
    """Resolve `cfg.dataset` and read its rows."""
    spec = cfg.dataset.strip()
    if spec.startswith("builtin:"):
        path = builtin_path(spec.split(":", 1)[1])
        return Source(spec, read_local(path), sha256_file(path))
    path = Path(spec).expanduser()
    if path.exists() or path.suffix.lower() in LOCAL_SUFFIXES or not _HUB_ID.match(spec):
        rows = read_local(path)
        return Source(str(path), rows, sha256_file(path))
    rows = read_hub(spec, cfg.revision, cfg.columns.split)
    key = f"hub:{spec}@{cfg.revision or 'main'}"
    return Source(spec, rows, hashlib.sha256(key.encode()).hexdigest())


def check_columns(source: Source, cfg: DataConfig) -> None:
    """Every column the config needs must be in the data: one-line error naming the file and the column."""
    have = list(source.rows[0].keys())
    needed = [] if cfg.prompt_template is not None else [cfg.columns.prompt]
    if cfg.columns.messages:
        if cfg.prompt_template is not None:
            raise CodetuneError(
                "data.prompt_template: does not apply to conversations (data.columns.messages): the statement is "
                "the first user turn; remove one of the two"
            )
        if cfg.response != "output":
            raise CodetuneError(
                f"data.response: {cfg.response!r} does not apply to conversations (data.columns.messages): "
                "the answer is the last assistant turn; remove data.response"
            )
        needed = [cfg.columns.messages]
    elif cfg.format == "study" or cfg.response == "solution":
        needed.append(cfg.columns.solution)
    elif cfg.response == "output":
        needed.append(cfg.columns.output)
    if cfg.columns.problem_id:
        needed.append(cfg.columns.problem_id)
    split = cfg.columns.split
    if split is not None and "split" in cfg.columns.model_fields_set and split not in source.rows[0]:
        # the default `split` falls back to a seeded split when the data has no such column; a named one must exist
        raise CodetuneError(
            f"{source.name}: column '{split}' (data.columns.split) not found (columns: {', '.join(have)}); "
            "set data.columns.split=null for a seeded split"
        )
    for row_no, row in enumerate(source.rows):
        for col in needed:
            if col not in row:
                where = "" if row_no == 0 else f" (row {row_no + 1})"
                cols = ", ".join(have)
                hint = next(
                    (
                        f"; for conversations set data.columns.messages={c}"
                        for c in CONVERSATION_COLUMNS
                        if c in row
                    ),
                    "",
                )
                raise CodetuneError(f"{source.name}: column '{col}' not found{where} (columns: {cols}){hint}")


def load_rows(cfg: DataConfig) -> list[dict[str, Any]]:
    """The raw rows of `cfg.dataset` (original column names), after checking the mapped columns exist."""
    source = open_source(cfg)
    check_columns(source, cfg)
    return source.rows
