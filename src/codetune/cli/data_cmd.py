"""`codetune data inspect|check`: statistics of an arm's data and contamination against a benchmark."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from codetune.cli.bench_cmd import DIFFICULTY, END, PLATFORM, RELEASE, START, refuse_local_release, split_list
from codetune.errors import CodetuneError

data_app = typer.Typer(
    help="Inspect instruction data and check it against benchmark problems.", no_args_is_help=True
)
console = Console()


OVERRIDE_HELP = "DataConfig KEY=VALUE, e.g. columns.messages=messages or columns.split=null (repeatable)."


def data_config(dataset: str, config: Path | None, override: list[str], **flags: Any) -> Any:
    """A DataConfig from an arm YAML (its `data:` section, or the whole file), then `-o key=value`, then `dataset`
    and the dedicated flags (those not given are None and left alone)."""
    from codetune.configio import apply_overrides, read_yaml, validate
    from codetune.data.config import DataConfig

    raw: dict[str, Any] = read_yaml(config) if config else {}
    if "data" in raw:
        if not isinstance(raw["data"], dict):
            raise CodetuneError(f"{config}: data: expected a mapping of data settings")
        raw = raw["data"]
    apply_overrides(raw, override)
    raw["dataset"] = dataset
    for key, value in flags.items():
        if value is not None:
            node = raw
            *parents, last = key.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[last] = value
    return validate(DataConfig, raw, str(config) if config else "data config", override)


def default_tokenizer() -> Any:
    """The real Qwen2.5-Coder tokenizer shipped with codetune, unpacked once into the cache."""
    from transformers import AutoTokenizer

    from codetune import paths
    from codetune.files import file_lock
    from codetune.models.tiny import copy_qwen_tokenizer

    dest = paths.home() / "tokenizers" / "qwen2.5-coder"
    with file_lock(dest):
        if not (dest / "chat_template.jinja").is_file():
            copy_qwen_tokenizer(dest)
    return AutoTokenizer.from_pretrained(dest)


def _training_length(config: Path | None, override: list[str]) -> int | None:
    """The length training truncates at (the YAML's train.max_length, else TrainConfig's default), unless the data
    settings name their own max_length (in the YAML's data section or an override): then None."""
    from codetune.configio import read_yaml
    from codetune.train.config import TrainConfig

    raw: dict[str, Any] = read_yaml(config) if config else {}
    data = raw.get("data", raw)
    if (isinstance(data, dict) and "max_length" in data) or any(
        o.split("=", 1)[0].strip() == "max_length" for o in override
    ):
        return None
    train = raw.get("train")
    value = train.get("max_length") if isinstance(train, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else TrainConfig().max_length


@data_app.command("inspect")
def inspect_cmd(
    dataset: str = typer.Argument(
        ..., help="Hub id, local .jsonl/.json/.parquet, or builtin:deep / builtin:diverse."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="Arm YAML whose data section (or whole file) to use."
    ),
    model: str | None = typer.Option(
        None, "--model", help="Tokenizer of this model (default: shipped Qwen2.5)."
    ),
    max_length: int | None = typer.Option(
        None,
        "--max-length",
        help="Token budget for the truncation share (default: data.max_length if set, else the train.max_length "
        "training truncates at: the --config's, or 1024).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    override: list[str] = typer.Option([], "--override", "-o", help=OVERRIDE_HELP),
) -> None:
    """Rows, problems, solutions per problem and token lengths per split; split leaks and contamination."""
    from codetune.data import inspect
    from codetune.models import load_tokenizer

    if max_length is None:
        max_length = _training_length(config, override)
    cfg = data_config(dataset, config, override, max_length=max_length)
    tokenizer = load_tokenizer(model, quiet=True) if model else default_tokenizer()
    result = inspect(cfg, tokenizer)
    if as_json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    title = f"{cfg.dataset}  format={cfg.format} response={cfg.response} split={result['split_source']}"
    table = Table(
        "split", "rows", "problems", "sol/problem", "p50", "p90", "p99", "max", "truncated", title=title
    )
    for name, s in result["splits"].items():
        t = s["tokens"]
        spp = s["solutions_per_problem"]
        table.add_row(
            name,
            str(s["rows"]),
            str(s["problems"]),
            f"{spp['mean']:.2f} (max {spp['max']})",
            *(str(t[k]) for k in ("p50", "p90", "p99", "max")),
            f"{s['truncated_share']:.1%} > {cfg.max_length}",
        )
    console.print(table)
    for leak in result["leaks"]:
        rows = "; ".join(
            f"{split} {', '.join(str(i + 1) for i in ids)}" for split, ids in leak["rows"].items()
        )
        # an id starting s- was made up (no problem-id column): not worth showing
        named = "" if str(leak["problem_id"]).startswith("s-") else f" {leak['problem_id']}"
        console.print(
            f"[yellow]leak[/]: problem{named} is in {' and '.join(leak['splits'])} (rows {rows}, 1 = the "
            f"dataset's first): {leak['statement']!r}",
            highlight=False,
        )
    if not result["leaks"]:
        console.print("no problem appears in more than one split")
    _print_matches(result["contamination"]["matches"])


def _print_matches(matches: list[dict]) -> None:
    if not matches:
        return
    table = Table("row", "problem_id", "split", "benchmark question", "overlap", title="contamination")
    for m in matches:  # rows counted from 1, as in error messages (the JSON keeps 0-based indices)
        pid = "-" if m["problem_id"] is None else str(m["problem_id"])
        table.add_row(str(m["row"] + 1), pid, m["split"], m["question_id"], f"{m['overlap']:.0%}")
    console.print(table)


def benchmark_statements(spec: str, release: str | None, filters: dict[str, Any]) -> list[dict[str, str]]:
    """`[{question_id, question_content}]` of the problems to check against. A local file or built-in set with no
    filter is read for its statements alone; hub problems and filtered sets go through the bench stage's loader."""
    from codetune.data import read_problems

    local = spec.startswith("builtin:") or Path(spec).expanduser().is_file()
    if local and not filters:
        return read_problems(spec)
    from codetune.bench.config import ProblemFilter
    from codetune.bench.problems import load_problems
    from codetune.configio import validate

    filt = validate(ProblemFilter, filters, "data check")
    problems = load_problems(spec, filt, release)
    if not problems:
        raise CodetuneError(f"{spec}: no problems left after the filter {filters}")
    return [{"question_id": p.question_id, "question_content": p.question_content} for p in problems]


@data_app.command("check")
def check_cmd(
    dataset: str = typer.Argument(..., help="Hub id, local .jsonl/.json/.parquet, or builtin:NAME."),
    problems: str = typer.Option(
        ...,
        "--problems",
        help="LiveCodeBench JSONL, builtin:quickstart, or the hub's livecodebench/code_generation_lite.",
    ),
    release: str | None = RELEASE,
    platform: list[str] | None = PLATFORM,
    difficulty: list[str] | None = DIFFICULTY,
    start: str | None = START,
    end: str | None = END,
    config: Path | None = typer.Option(
        None, "--config", help="Arm YAML whose data section (or whole file) to use."
    ),
    ngram: int | None = typer.Option(None, "--ngram", help="Word n-gram size (default from config: 13)."),
    threshold: float | None = typer.Option(None, "--threshold", help="Overlap share that marks a match."),
    drop_out: Path | None = typer.Option(
        None, "--drop-out", help="Write the rows without matches to this JSONL."
    ),
    override: list[str] = typer.Option([], "--override", "-o", help=OVERRIDE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Find training statements that overlap benchmark problems (word n-grams of normalized text)."""
    from codetune.data import find_matches, load_rows, read_statements
    from codetune.files import refuse_input_as_output, write_jsonl

    if drop_out:
        refuse_input_as_output("--drop-out", drop_out, dataset, problems, config)
    refuse_local_release(release, problems)
    cfg = data_config(
        dataset,
        config,
        override,
        **{
            "contamination.problems": problems,
            "contamination.ngram": ngram,
            "contamination.threshold": threshold,
        },
    )
    rows = load_rows(cfg)
    c = cfg.contamination
    statements, _ = read_statements(rows, cfg, cfg.dataset)
    given = {
        "platform": split_list(platform),
        "difficulty": split_list(difficulty),
        "start": start,
        "end": end,
    }
    filters = {k: v for k, v in given.items() if v is not None}
    benchmark = benchmark_statements(problems, release, filters)
    matches = find_matches(statements, benchmark, n=c.ngram, threshold=c.threshold)
    pid_col = cfg.columns.problem_id or "problem_id"
    for m in matches:
        m["problem_id"] = rows[m["row"]].get(pid_col)
        m["split"] = str(rows[m["row"]].get(cfg.columns.split or "", "-"))
    kept = None
    if drop_out:
        bad = {m["row"] for m in matches}
        kept = [r for i, r in enumerate(rows) if i not in bad]
        write_jsonl(drop_out, kept)
    if as_json:
        out = {
            "dataset": dataset,
            "problems": problems,
            "filter": filters,
            "benchmark_problems": len(benchmark),
        }
        out |= {"ngram": c.ngram, "threshold": c.threshold}
        out |= {"rows": len(rows), "matches": matches, "kept": None if kept is None else len(kept)}
        print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
        return
    _print_matches(matches)
    console.print(
        f"{len({m['row'] for m in matches})} of {len(rows)} rows match one of the {len(benchmark)} benchmark problems"
    )
    if drop_out:
        console.print(f"wrote {len(kept or [])} rows to {drop_out}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
