"""Checkpoint sweep: evaluate the base model and a training run's checkpoints, then pick the best checkpoint.

The base model is loaded once and every checkpoint's LoRA adapter is attached to it under its own name; their answers
are generated in shared batches (PEFT mixed-adapter batches), then each checkpoint is graded into its own eval folder.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from codetune.bench.config import BenchConfig
from codetune.errors import CodetuneError
from codetune.files import atomic_write_json, not_found, read_json

BEST_RULE = (
    "highest pass@1 among checkpoints (the base model is not a candidate); ties broken by lowest validation loss, "
    "then by the earlier step; test loss is never used"
)
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of each `checkpoint-<step>` holding an adapter, by step."""
    found = []
    for d in run_dir.iterdir() if run_dir.is_dir() else []:
        m = _CHECKPOINT.match(d.name)
        if m and d.is_dir() and (d / "adapter_config.json").is_file():
            found.append((int(m.group(1)), d))
    return sorted(found)


def load_losses(run_dir: Path) -> dict[int, dict[str, float]]:
    """step -> {val_loss, test_loss}, merged over the entries of log.json (missing file: no losses)."""
    path = run_dir / "log.json"
    if not path.is_file():
        return {}
    log = read_json(path)
    if not isinstance(log, list):
        raise CodetuneError(f"{path}: expected a list of {{step, val_loss, ...}} entries")
    losses: dict[int, dict[str, float]] = {}
    for entry in log:
        if not isinstance(entry, dict) or not isinstance(entry.get("step"), int):
            continue
        for key in ("val_loss", "test_loss"):
            if isinstance(entry.get(key), int | float):
                losses.setdefault(entry["step"], {})[key] = float(entry[key])
    return losses


def _final_step(run_dir: Path) -> int | None:
    run_json = run_dir / "run.json"
    if run_json.is_file():
        step = read_json(run_json).get("final_step")
        if isinstance(step, int):
            return step
    return None


def sweep_targets(run_dir: Path, every: int = 1) -> list[tuple[str, int | None, Path]]:
    """(label, step, adapter folder) to evaluate: every `every`-th checkpoint plus the last, and `adapter/` as
    `final` unless a checkpoint already has the final step."""
    if every < 1:
        raise CodetuneError(f"every: must be >= 1, got {every}")
    ckpts = list_checkpoints(run_dir)
    chosen = ckpts[every - 1 :: every]
    if ckpts and ckpts[-1] not in chosen:
        chosen.append(ckpts[-1])
    targets: list[tuple[str, int | None, Path]] = [(d.name, step, d) for step, d in chosen]
    final = run_dir / "adapter"
    if (final / "adapter_config.json").is_file():
        final_step = _final_step(run_dir)
        if final_step is None or final_step not in {s for s, _ in ckpts}:
            targets.append(("final", final_step, final))
    return targets


def rank_key(pass_at_1: float, val_loss: Any, step: Any) -> tuple[float, float, float]:
    """BEST_RULE as a sort key: the smallest key is the best checkpoint."""
    return (
        -pass_at_1,
        val_loss if isinstance(val_loss, int | float) and math.isfinite(val_loss) else math.inf,
        step if isinstance(step, int) else math.inf,
    )


def pick_best(rows: list[dict[str, Any]]) -> str | None:
    """Label of the best checkpoint row by BEST_RULE (rows labelled `base` are skipped)."""
    candidates = [r for r in rows if r["label"] != "base"]
    if not candidates:
        return None
    return min(candidates, key=lambda r: rank_key(r["pass@1"], r.get("val_loss"), r.get("step")))["label"]


def sweep_run(
    run_dir: str | Path,
    model_spec: str,
    problems: list[Any],
    cfg: BenchConfig,
    *,
    every: int = 1,
    include_base: bool = True,
    base_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate base + checkpoints of `run_dir` into `run_dir/eval/<label>/`, write `run_dir/eval/sweep.json`."""
    run_dir = Path(run_dir)
    base = (Path(base_dir) if base_dir else run_dir / "eval" / "base") if include_base else None
    return sweep_runs([run_dir], model_spec, problems, cfg, every=every, base_dir=base, progress=progress)[0]


def sweep_runs(
    run_dirs: list[Path],
    model_spec: str,
    problems: list[Any],
    cfg: BenchConfig,
    *,
    every: int = 1,
    base_dir: Path | None = None,
    base_row: bool = True,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Evaluate the base model (into `base_dir`, when given) and the checkpoints of several runs of the same base
    model in one generation pass, then pick each run's best checkpoint into its `eval/sweep.json` (with a `base`
    row when `base_row`)."""
    from codetune.bench.evaluate import EvalTarget, evaluate_many

    targets: list[EvalTarget] = [EvalTarget(base_dir, None, "base", 0)] if base_dir is not None else []
    per_run: list[tuple[Path, list[EvalTarget]]] = []
    for run_dir in map(Path, run_dirs):
        if not run_dir.is_dir():
            raise CodetuneError(not_found(run_dir, "run folder"))
        found = sweep_targets(run_dir, every)
        if not found:
            raise CodetuneError(
                f"{run_dir}: no checkpoint-<step>/ or adapter/ folder with an adapter_config.json"
            )
        mine = [EvalTarget(run_dir / "eval" / label, adapter, label, step) for label, step, adapter in found]
        per_run.append((run_dir, mine))
        targets += mine
    summaries = evaluate_many(model_spec, problems, cfg, targets, progress=progress)
    by_target = dict(zip(targets, summaries, strict=True))

    results = []
    for run_dir, mine in per_run:
        losses = load_losses(run_dir)
        rows = []
        for t in targets[:1] + mine if base_dir is not None and base_row else mine:
            s = by_target[t]
            loss = losses.get(t.step, {}) if t.step is not None else {}
            rows.append(
                {
                    "label": t.label,
                    "step": t.step,
                    "pass@1": s["pass@1"],
                    "solved": s["solved"],
                    "total": s["total"],
                    "val_loss": loss.get("val_loss"),
                    "test_loss": loss.get("test_loss"),
                }
            )
        result = {"rows": rows, "best": pick_best(rows), "rule": BEST_RULE}
        atomic_write_json(run_dir / "eval" / "sweep.json", result)
        if progress:
            print_sweep(result, run_dir)
        results.append(result)
    return results


def print_sweep(result: dict[str, Any], run_dir: Path | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    title = f"checkpoint sweep: {run_dir.name}" if run_dir is not None else "checkpoint sweep"
    table = Table("label", "step", "pass@1", "solved", "val loss", "test loss", title=title)
    for r in result["rows"]:
        mark = " *" if r["label"] == result["best"] else ""
        table.add_row(
            r["label"] + mark,
            "-" if r["step"] is None else str(r["step"]),
            f"{r['pass@1']:.3f}",
            f"{r['solved']}/{r['total']}",
            "-" if r["val_loss"] is None else f"{r['val_loss']:.4f}",
            "-" if r["test_loss"] is None else f"{r['test_loss']:.4f}",
        )
    Console().print(table)
    Console().print(f"best: {result['best']}  ({result['rule']})")
