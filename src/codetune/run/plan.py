"""The plan of an experiment: its stages in order, their sizes, and a time estimate from measured speeds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from codetune.data.format import token_lengths
from codetune.run.config import Experiment
from codetune.run.speeds import lookup


@dataclass
class Stage:
    name: str  # prepare | train:<arm> | eval | report
    kind: str
    arm: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    estimate_s: float | None = None


@dataclass
class Plan:
    stages: list[Stage]
    device: str
    notes: list[str] = field(default_factory=list)

    def total_estimate_s(self, done: set[str] | None = None) -> float | None:
        """Seconds for the stages not `done`; None when one of them has no estimate (a partial sum would mislead)."""
        todo = [s.estimate_s for s in self.stages if s.name not in (done or set())]
        return None if any(e is None for e in todo) else sum(e for e in todo if e is not None)


def stage_names(exp: Experiment) -> list[Stage]:
    stages = [Stage("prepare", "prepare")]
    stages += [Stage(f"train:{a.name}", "train", a.name) for a in exp.runs()]
    if exp.evaluate.base or exp.evaluate.checkpoints != "none":
        stages.append(Stage("eval", "eval"))  # base + every arm's checkpoints, one generation pass
    stages.append(Stage("report", "report"))
    return stages


def checkpoints_of(steps: int, save_steps: int, checkpoints: str, every: int) -> list[int]:
    if checkpoints == "none" or steps <= 0:
        return []
    if checkpoints == "final":
        return [steps]
    saved = list(range(save_steps, steps + 1, save_steps))
    chosen = saved[every - 1 :: every]
    return sorted(set(chosen) | {steps})


def make_plan(
    exp: Experiment,
    *,
    device: str,
    tokenizer: Any = None,
    problems: list | None = None,
    splits: dict[str, Any] | None = None,
) -> Plan:
    """Fill sizes and estimates where the inputs are known (`splits`: arm -> SplitSet-like datasets dict)."""
    speeds = lookup(device, exp.model)
    plan = Plan(stage_names(exp), device)
    if speeds is None:
        plan.notes.append(f"no measured speeds for {exp.model} on {device}: no time estimate")
    n_problems = len(problems) if problems is not None else None
    gen_tokens = n_problems * exp.bench.n * exp.bench.max_new_tokens if n_problems is not None else None
    arm_ckpts: dict[str, int] = {}
    for st in plan.stages:
        if st.kind == "prepare":
            st.detail = {"model": exp.model, "device": device}
            st.estimate_s = speeds["first_load_s"] if speeds else None
        elif st.kind == "train":
            arm = next(a for a in exp.runs() if a.name == st.arm)
            tcfg = exp.arm_train(arm)
            ds = (splits or {}).get(arm.name)
            if ds is None or tokenizer is None:
                continue
            sizes = {k: len(v) for k, v in ds.items()}
            lengths = [min(n, tcfg.max_length) for n in token_lengths(list(ds["train"]), tokenizer)]
            per_epoch = math.ceil(sizes["train"] / tcfg.effective_batch_size)
            steps = tcfg.max_steps if tcfg.max_steps > 0 else math.ceil(per_epoch * tcfg.epochs)
            mean_len = sum(lengths) / max(len(lengths), 1)
            tokens = int(steps * tcfg.effective_batch_size * mean_len)
            n_evals = steps // tcfg.eval_steps
            eval_rows = sum(min(sizes[k], tcfg.eval_max_examples or sizes[k]) for k in ("valid", "test"))
            eval_tokens = int(n_evals * eval_rows * mean_len)
            ckpts = checkpoints_of(steps, tcfg.save_steps, exp.evaluate.checkpoints, exp.evaluate.every)
            arm_ckpts[arm.name] = len(ckpts)
            st.detail = {
                "rows": sizes,
                "steps": steps,
                "train_tokens": f"~{tokens}",  # mean row length x rows per step x steps: the rows drawn differ
                "loss_evals": n_evals,
                "checkpoints_to_eval": ckpts,
            }
            if speeds:
                st.estimate_s = speeds["load_s"] + (tokens + eval_tokens / 3) / speeds["train_tokens_s"]
        elif st.kind == "eval":
            if n_problems is None or len(arm_ckpts) < len(exp.runs()):
                continue
            models = int(exp.evaluate.base) + sum(arm_ckpts.values())
            st.detail = {
                "models": models,
                "problems": n_problems,
                "samples": exp.bench.n,
                "generations": n_problems * exp.bench.n * models,
            }
            if speeds and gen_tokens is not None:
                st.estimate_s = speeds["load_s"] + models * gen_tokens / speeds["generate_tokens_s"]
        elif st.kind == "report":
            st.estimate_s = 10.0
    return plan
