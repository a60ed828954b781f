"""Run an experiment's stages in order. Each stage is skipped when complete and resumed when not."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from codetune.configio import dump_config, with_defaults
from codetune.errors import CodetuneError
from codetune.files import atomic_write_json, atomic_write_text, file_lock
from codetune.run.config import Experiment
from codetune.run.plan import Plan, Stage, make_plan
from codetune.run.state import StageState

# Settings that change how fast answers come, not which programs are graded: a folder's rerun may change them.
UNPINNED = {"bench.decode_loop", "bench.stop_at_program"}


def _changed_keys(before: Any, now: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two loaded configs; list items by name, as `-o` spells them
    (`arms.deep.train.learning_rate`)."""
    if isinstance(before, list) and isinstance(now, list):
        before, now = _by_name(before), _by_name(now)
    if isinstance(before, dict) and isinstance(now, dict):
        keys = list(before) + [k for k in now if k not in before]
        return [c for k in keys for c in _changed_keys(before.get(k), now.get(k), f"{prefix}{k}.")]
    return [] if before == now else [prefix.rstrip(".") or "(the whole config)"]


def _by_name(items: list) -> dict | list:
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if None in names or len(set(names)) < len(names):
        return items
    return dict(zip(names, items, strict=True))


class ExperimentRunner:
    def __init__(self, exp: Experiment, console: Console | None = None) -> None:
        self.exp = exp
        self.out = Path(exp.out)
        self.console = console or Console()
        self._tokenizer: Any = None
        self._problems: list | None = None
        self._splits: dict[str, Any] = {}

    # -- inputs shared by stages -------------------------------------------------------------------
    def device(self) -> str:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from codetune.models import load_tokenizer

            self._tokenizer = load_tokenizer(self.exp.model)
        return self._tokenizer

    def problems(self) -> list:
        if self._problems is None:
            from codetune.bench.problems import load_problems

            b = self.exp.bench
            self._problems = load_problems(b.problems, b.filter, b.release)
            if not self._problems:
                raise CodetuneError(f"bench.problems {b.problems!r}: no problems left after the filters")
        return self._problems

    def splits(self, arm_name: str) -> Any:
        """The data splits of one run; runs of one arm (one per seed) share them."""
        arm = next(a for a in self.exp.runs() if a.name == arm_name)
        key = arm.data.model_dump_json()
        if key not in self._splits:
            from codetune.data import build_splits

            bench = [
                {"question_id": p.question_id, "question_content": p.question_content}
                for p in self.problems()
            ]
            drop = self.exp.decontaminate
            self._splits[key] = build_splits(arm.data, self.tokenizer(), benchmark=bench, drop_benchmark=drop)
        return self._splits[key]

    def plan(self) -> Plan:
        splits = {a.name: self.splits(a.name).datasets for a in self.exp.runs()}
        return make_plan(
            self.exp,
            device=self.device(),
            tokenizer=self.tokenizer(),
            problems=self.problems(),
            splits=splits,
        )

    # -- the run -----------------------------------------------------------------------------------
    def run(self) -> Path:
        self.check_folder()
        self.out.mkdir(parents=True, exist_ok=True)
        with file_lock(self.out / "experiment", timeout=0):
            self._pin_config()
            state = StageState(self.out)
            plan = self.plan()
            for stage in plan.stages:
                if state.is_complete(stage.name):
                    self.console.print(f"[dim]skip {stage.name}: complete[/]")
                    continue
                self.console.rule(f"[bold]{stage.name}")
                state.mark(stage.name, "running")
                t0 = time.perf_counter()
                try:
                    info = getattr(self, f"_stage_{stage.kind}")(stage)
                except BaseException as e:
                    state.mark(stage.name, "failed", error=f"{type(e).__name__}: {e}"[:500])
                    raise
                state.mark(stage.name, "complete", seconds=round(time.perf_counter() - t0, 1), **(info or {}))
        return self.out / "report"

    def check_folder(self) -> None:
        """What `run` refuses before any work (also checked by --dry-run): a file as `out`, or a folder holding an
        experiment with other settings (a rerun would mix their results)."""
        if self.out.exists() and not self.out.is_dir():
            raise CodetuneError(f"{self.out}: is a file; the experiment folder (`out`) must be a folder")
        path = self.out / "experiment.yaml"
        if path.is_file():
            before = with_defaults(Experiment, yaml.safe_load(path.read_text()))
            changed = [
                key
                for key in _changed_keys(before, yaml.safe_load(dump_config(self.exp)))
                if key not in UNPINNED
            ]
            if changed:
                shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
                raise CodetuneError(
                    f"{path}: this folder holds an experiment with other settings ({shown}); use another `out` or "
                    "delete the folder"
                )

    def _pin_config(self) -> None:
        """The first run writes experiment.yaml; later runs are checked against it (again here, under the lock)."""
        self.check_folder()
        path = self.out / "experiment.yaml"
        if not path.is_file():
            atomic_write_text(path, dump_config(self.exp))

    def _stage_prepare(self, stage: Stage) -> dict:
        from codetune.models.load import hf_location

        hf_location(self.exp.model)  # assemble + convert a catalog/GGUF model once, before anything is timed
        for arm in self.exp.runs():
            s = self.splits(arm.name)
            atomic_write_json(self.out / "arms" / arm.name / "data_report.json", s.report)
        return {"problems": len(self.problems())}

    def _stage_train(self, stage: Stage) -> dict:
        from codetune.train import train

        arm = next(a for a in self.exp.runs() if a.name == stage.arm)
        s = self.splits(arm.name)
        tcfg = self.exp.arm_train(arm)
        extra: dict[str, Any] = {
            "model": self.exp.model,
            "arm": arm.name,
            "data": arm.data.model_dump(mode="json"),
        }
        if self.exp.seeds:
            extra["group"] = self.exp.group_of(arm.name)
        result = train(
            self.exp.model,
            s.datasets,
            tcfg,
            self.out / "arms" / arm.name,
            resume=True,
            extra_config=extra,
            data_fingerprints={arm.name: s.fingerprint},
        )
        return {"final_step": result.final_step}

    def _stage_eval(self, stage: Stage) -> dict:
        """The base model and every arm's chosen checkpoints, generated in one pass (shared batches)."""
        from codetune.bench.evaluate import evaluate
        from codetune.bench.sweep import sweep_runs

        b, ev = self.exp.bench, self.exp.evaluate
        base_dir = self.out / "base" / "eval" if ev.base else None
        if ev.checkpoints == "none":
            assert base_dir is not None  # the plan has no eval stage when there is nothing to evaluate
            summary = evaluate(self.exp.model, self.problems(), b, base_dir, label="base")
            return {"base_pass@1": summary.get("pass@1")}
        arms = self.exp.runs()
        runs = [self.out / "arms" / a.name for a in arms]
        every = 10**9 if ev.checkpoints == "final" else ev.every
        results = sweep_runs(
            runs, self.exp.model, self.problems(), b, every=every, base_dir=base_dir, base_row=False
        )
        return {"best": {a.name: r.get("best") for a, r in zip(arms, results, strict=True)}}

    def _stage_report(self, stage: Stage) -> dict:
        from codetune.report import build_report

        runs = [self.out / "arms" / a.name for a in self.exp.runs()]
        base = self.out / "base" / "eval" if self.exp.evaluate.base else None
        html = build_report(
            runs,
            out_dir=self.out / "report",
            base=base,
            title=self.exp.report.title or self.exp.name,
            study_logs=self.exp.report.study_logs,
        )
        return {"report": str(html)}
