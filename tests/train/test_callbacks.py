"""Early stopping decides on the validation loss only; complete vs half-written checkpoints."""

from __future__ import annotations

import json
from types import SimpleNamespace

from transformers import TrainerControl, TrainerState

from codetune.train.callbacks import ValEarlyStopping
from codetune.train.checkpoints import is_complete, latest_complete, remove_incomplete

ARGS = SimpleNamespace(metric_for_best_model="eval_val_loss", greater_is_better=False)


def evaluate(cb: ValEarlyStopping, state: TrainerState, val: float, test: float) -> TrainerControl:
    """What the Trainer does at one evaluation with eval_dataset={"val": ..., "test": ...}."""
    control = TrainerControl()
    cb.on_evaluate(ARGS, state, control, metrics={"eval_val_loss": val})
    cb.on_evaluate(ARGS, state, control, metrics={"eval_test_loss": test})
    if state.best_metric is None or val < state.best_metric:
        state.best_metric = val
    return control


def test_stops_when_validation_loss_stops_improving_even_if_test_improves():
    cb, state = ValEarlyStopping(early_stopping_patience=2), TrainerState()
    assert not evaluate(cb, state, val=1.0, test=1.0).should_training_stop
    assert not evaluate(cb, state, val=1.1, test=0.5).should_training_stop
    assert evaluate(cb, state, val=1.2, test=0.1).should_training_stop


def test_keeps_going_while_validation_improves_even_if_test_worsens():
    cb, state = ValEarlyStopping(early_stopping_patience=1), TrainerState()
    for i, test in enumerate([1.0, 2.0, 3.0, 4.0]):
        assert not evaluate(cb, state, val=1.0 - 0.1 * i, test=test).should_training_stop


def make_checkpoint(run, step: int, *, state: bool = True) -> None:
    d = run / f"checkpoint-{step}"
    d.mkdir(parents=True)
    for name in ("adapter_config.json", "adapter_model.safetensors", "optimizer.pt", "scheduler.pt"):
        (d / name).write_text("x")
    if state:
        (d / "trainer_state.json").write_text(json.dumps({"global_step": step}))


def test_latest_complete_skips_half_written_checkpoints(tmp_path):
    make_checkpoint(tmp_path, 10)
    make_checkpoint(tmp_path, 20)
    make_checkpoint(tmp_path, 30, state=False)  # killed while saving
    (tmp_path / "checkpoint-40").mkdir()  # killed right after mkdir
    make_checkpoint(tmp_path, 50)
    (tmp_path / "checkpoint-50" / "adapter_model.safetensors").unlink()
    make_checkpoint(tmp_path, 60)
    (tmp_path / "checkpoint-60" / "trainer_state.json").write_text('{"global_st')  # torn write
    assert latest_complete(tmp_path).name == "checkpoint-20"
    assert [p.name for p in remove_incomplete(tmp_path)] == [f"checkpoint-{s}" for s in (30, 40, 50, 60)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-20"]
    assert is_complete(tmp_path / "checkpoint-10")


def test_no_checkpoint_means_fresh_start(tmp_path):
    assert latest_complete(tmp_path) is None
    assert latest_complete(tmp_path / "missing") is None
