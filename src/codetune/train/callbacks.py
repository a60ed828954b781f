"""Trainer callbacks: the loss log streamed to the run folder, a rich progress bar, val-only early stopping."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from transformers import EarlyStoppingCallback, TrainerCallback

from codetune.files import append_jsonl, atomic_write_json

LOG_KEYS = ("step", "epoch", "train_loss", "val_loss", "test_loss", "learning_rate", "tokens_seen")


class LossLogCallback(TrainerCallback):
    """Append every log event to metrics.jsonl and rewrite log.json with one record per evaluation.

    A record holds the mean training loss since the previous record, the loss on each eval set, the learning rate
    and the non-pad tokens trained on so far. `records` are those kept from before a resume.
    """

    def __init__(self, run_dir: Path, eval_names: list[str], records: list[dict] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.eval_names = list(eval_names)
        self.records: list[dict] = list(records or [])
        self._loss_sum = 0.0
        self._loss_steps = 0
        self._last_train_step = 0
        self._lr: float | None = None
        self._eval: dict[str, float] = {}
        self.tokens_per_second: float | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self._last_train_step = state.global_step

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        # Log the training loss at every evaluation so each record has its own train_loss.
        if control.should_evaluate:
            control.should_log = True

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        append_jsonl(self.run_dir / "metrics.jsonl", {"step": state.global_step, "time": time.time(), **logs})
        if "loss" in logs:
            steps = max(state.global_step - self._last_train_step, 1)
            self._loss_sum += float(logs["loss"]) * steps
            self._loss_steps += steps
            self._last_train_step = state.global_step
            self._lr = logs.get("learning_rate", self._lr)
            self.tokens_per_second = logs.get("train_tokens_per_second", self.tokens_per_second)

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict | None = None, **kw: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        self._eval.update(metrics or {})
        if not all(f"eval_{name}_loss" in self._eval for name in self.eval_names):
            return
        self.records = [r for r in self.records if r["step"] < state.global_step]
        self.records.append(
            {
                "step": state.global_step,
                "epoch": round(state.epoch, 4) if state.epoch is not None else None,
                "train_loss": self._loss_sum / self._loss_steps if self._loss_steps else None,
                "val_loss": self._eval.get("eval_val_loss"),
                "test_loss": self._eval.get("eval_test_loss"),
                "learning_rate": self._lr,
                "tokens_seen": state.num_input_tokens_seen,
            }
        )
        atomic_write_json(self.run_dir / "log.json", self.records)
        self._eval = {}
        self._loss_sum, self._loss_steps = 0.0, 0


class ValEarlyStopping(EarlyStoppingCallback):
    """Early stopping on the validation loss only; the test-set evaluation passes by without a warning."""

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict | None = None, **kw: Any
    ) -> None:
        if metrics and args.metric_for_best_model in metrics:
            super().on_evaluate(args, state, control, metrics, **kw)


class RichProgressCallback(TrainerCallback):
    """One progress bar: step, latest train/val/test loss and training tokens per second."""

    def __init__(self) -> None:
        self.progress: Any = None
        self.task: Any = None
        self._t0 = 0.0
        self._tokens0 = 0
        self._fields = {"loss": "-", "val": "-", "test": "-", "tps": "-"}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if not state.is_world_process_zero:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  val {task.fields[val]}  test {task.fields[test]}"),
            TextColumn("{task.fields[tps]} tok/s"),
            TimeRemainingColumn(),
        )
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=state.max_steps, completed=state.global_step, **self._fields
        )
        self._t0, self._tokens0 = time.monotonic(), state.num_input_tokens_seen

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.progress is None:
            return
        elapsed = time.monotonic() - self._t0
        if elapsed > 0:
            self._fields["tps"] = f"{(state.num_input_tokens_seen - self._tokens0) / elapsed:,.0f}"
        self.progress.update(self.task, completed=state.global_step, **self._fields)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
        if self.progress is None or not logs:
            return
        for key, field in (("loss", "loss"), ("eval_val_loss", "val"), ("eval_test_loss", "test")):
            if key in logs:
                self._fields[field] = f"{logs[key]:.4f}"
        self.progress.update(self.task, **self._fields)

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
