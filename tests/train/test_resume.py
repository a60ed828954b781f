"""A run killed after its first checkpoint resumes to the same end as an uninterrupted run; 2-process DDP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sft_fixtures import fast_config, make_splits

from codetune.train.checkpoints import is_complete, latest_complete

HERE = Path(__file__).resolve().parent

KILLABLE = """
import sys, time
from pathlib import Path
sys.path.insert(0, {here!r})
import codetune.train.callbacks as cb
from codetune.train import train
from sft_fixtures import fast_config, make_splits

def stall(self, args, state, control, **kw):
    time.sleep(120)  # the test kills the process while it waits here, after the first checkpoint

cb.LossLogCallback.on_save = stall
train({model!r}, make_splits(), fast_config(), Path({out!r}), progress=False)
"""


def _env() -> dict:
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}


def test_killed_run_resumes_to_the_same_end(trained_run, tiny_model_dir, tmp_path):
    from codetune.train import train

    out = tmp_path / "run"
    script = tmp_path / "killable.py"
    script.write_text(KILLABLE.format(here=str(HERE), model=str(tiny_model_dir), out=str(out)))
    proc = subprocess.Popen([sys.executable, str(script)], env=_env(), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not is_complete(out / "checkpoint-2"):
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    # A save cut short by the kill: weights config written, no trainer state.
    shutil.copytree(out / "checkpoint-2", out / "checkpoint-4")
    (out / "checkpoint-4" / "trainer_state.json").unlink()
    assert latest_complete(out).name == "checkpoint-2"

    result = train(str(tiny_model_dir), make_splits(), fast_config(), out, resume=True, progress=False)

    assert result.final_step == trained_run.final_step == 4
    steps = [r["step"] for r in json.loads((out / "log.json").read_text())]
    assert steps == [r["step"] for r in trained_run.log] == [2, 4]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert all(is_complete(p) for p in out.glob("checkpoint-*"))
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "complete" and info["resumed_from"] == [2]
    for got, want in zip(result.log, trained_run.log, strict=True):
        assert got["val_loss"] == pytest.approx(want["val_loss"], rel=1e-3)
        assert got["tokens_seen"] == want["tokens_seen"]


DDP = """
import sys
from pathlib import Path
sys.path.insert(0, {here!r})
from codetune.train import train
from sft_fixtures import fast_config, make_splits

cfg = fast_config(epochs=1, micro_batch_size=2, effective_batch_size=4, eval_steps=1, save_steps=1)
train({model!r}, make_splits(), cfg, Path({out!r}), progress=False)
"""


LAUNCHERS = {
    "torchrun": ["torchrun", "--nproc_per_node", "2", "--master_port", "29517"],
    # accelerate's multi-process launcher (torchrun underneath); on a CPU-only machine the trainer's use_cpu makes
    # the processes join one gloo group instead of training alone.
    "accelerate": [
        "accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29518",
    ],
}  # fmt: skip


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_two_process_ddp_run_finishes(tiny_model_dir, tmp_path, launcher):
    out = tmp_path / "run"
    script = tmp_path / "ddp.py"
    script.write_text(DDP.format(here=str(HERE), model=str(tiny_model_dir), out=str(out)))
    exe, *args = LAUNCHERS[launcher]
    cmd = [str(Path(sys.executable).parent / exe), *args, str(script)]
    # TMPDIR: torch elastic leaves a torchelastic_* log folder in the temp dir of every launch
    env = {**_env(), "TMPDIR": str(tmp_path)}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]

    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "complete" and info["world_size"] == 2
    # 8 rows / (2 per process x 2 processes) = 2 steps
    assert info["final_step"] == 2
    log = json.loads((out / "log.json").read_text())
    assert [r["step"] for r in log] == [1, 2]
    events = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in events if "loss" in r] == [1, 2]  # written by rank 0 only
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    assert (out / "adapter" / "adapter_model.safetensors").is_file()


def test_checkpoints_appear_whole(tiny_model_dir, tmp_path, monkeypatch):
    """While a checkpoint is being written it lives under .staging/; the run folder only ever shows whole ones."""
    from transformers import Trainer

    from codetune.train import train

    out = tmp_path / "run"
    seen: list[tuple[bool, bool]] = []
    original = Trainer._save_rng_state

    def spy(self, output_dir):  # called in the middle of each checkpoint save
        step = self.state.global_step
        seen.append(
            (
                (out / f"checkpoint-{step}").exists(),
                Path(output_dir) == out / ".staging" / f"checkpoint-{step}",
            )
        )
        return original(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_rng_state", spy)
    result = train(str(tiny_model_dir), make_splits(), fast_config(save_total_limit=1), out, progress=False)
    assert seen == [(False, True), (False, True)]
    assert not any((out / ".staging").iterdir())
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-4"]  # the limit still rotates
    assert is_complete(out / "checkpoint-4") and result.final_step == 4
    assert (out / "adapter" / "adapter_model.safetensors").is_file()


def test_resume_replays_lora_dropout(tiny_model_dir, tmp_path):
    """With LoRA dropout on (lean LoRA draws its masks from the global RNG, which checkpoints save), a run resumed
    from its step-2 checkpoint logs exactly the losses of the uninterrupted run."""
    from codetune.train import train
    from codetune.train.config import LoraConfig

    cfg = fast_config(lora=LoraConfig(r=8, alpha=16, dropout=0.3))
    full = train(str(tiny_model_dir), make_splits(), cfg, tmp_path / "full", progress=False)
    cut = tmp_path / "cut"
    cut.mkdir()
    for name in ("config.yaml", "run.json", "log.json"):
        shutil.copy(tmp_path / "full" / name, cut / name)
    shutil.copytree(tmp_path / "full" / "checkpoint-2", cut / "checkpoint-2")
    info = json.loads((cut / "run.json").read_text())
    (cut / "run.json").write_text(json.dumps({**info, "status": "running"}))
    resumed = train(str(tiny_model_dir), make_splits(), cfg, cut, resume=True, progress=False)
    assert [r["step"] for r in resumed.log] == [2, 4]
    losses = [(r["train_loss"], r["val_loss"]) for r in resumed.log]
    assert losses == [(r["train_loss"], r["val_loss"]) for r in full.log]
