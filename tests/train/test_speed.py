"""codetune's fast training path: kernel choice, compiled layers and their memory budget, the same optimizer step as
the plain path, the throughput and memory benchmarks."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from fast_fixtures import sequences, sharp_model  # noqa: E402

from codetune.errors import CodetuneError  # noqa: E402
from codetune.train import memory, speed  # noqa: E402
from codetune.train.config import STUDY_TARGETS, TrainConfig  # noqa: E402
from codetune.train.speed import configure_fast_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("liger_installed", [True, False])
def test_kernel_choice(liger_installed, monkeypatch):
    monkeypatch.setattr(speed, "liger_installed", lambda: liger_installed)
    monkeypatch.setattr(speed, "_triton_ready", lambda: True)

    def choose(cuda: bool, **switches: str) -> str:
        return speed.choose_kernels(TrainConfig(**switches), cuda)

    assert choose(False) == "eager"
    assert choose(True) == "compile"
    assert choose(False, compile="on") == "compile"
    assert choose(True, compile="off") == ("liger" if liger_installed else "eager")
    assert choose(True, compile="off", liger_kernel="off") == "eager"
    if liger_installed:
        assert choose(True, liger_kernel="on") == "liger"  # an explicit "on" wins over auto
    else:
        with pytest.raises(CodetuneError, match="liger-kernel package"):
            choose(True, liger_kernel="on")
    with pytest.raises(CodetuneError, match="cannot be combined"):
        choose(True, compile="on", liger_kernel="on")
    monkeypatch.setattr(speed, "_triton_ready", lambda: False)  # e.g. a GPU Triton does not support
    assert choose(True) == ("liger" if liger_installed else "eager")
    assert choose(True, compile="on") == "compile"


def test_compile_memory_budget_reaches_the_partitioner(tiny_model_dir):
    """train.compile_memory_budget is applied only inside `training_context`, where compiled layers then keep fewer
    activations for the backward pass (and no budget leaves torch's setting alone); the batch plan expects it."""
    import torch._functorch.config as functorch
    from peft import LoraConfig, get_peft_model

    from codetune.train.memory import saved_activation_bytes
    from codetune.train.speed import after_lora, training_context

    ids = torch.tensor(sequences((24, 24)))
    saved = {}
    for budget in (1.0, 0.4):
        torch._dynamo.reset()
        model = sharp_model(tiny_model_dir).train()
        cfg = TrainConfig(compile="on", lean_lora="off", compile_memory_budget=budget)
        configure_fast_path(model, cfg, "cpu")
        lora = LoraConfig(r=4, lora_alpha=8, target_modules=STUDY_TARGETS, task_type="CAUSAL_LM")
        model = get_peft_model(model, lora)
        after_lora(model)
        assert model.codetune_fast_path["compile_memory_budget"] == budget
        with training_context(model):
            assert functorch.activation_memory_budget == budget
            layers = model.get_base_model().model.layers
            saved[budget] = saved_activation_bytes(
                model, lambda m=model: m(input_ids=ids, labels=ids), layers
            )
        assert functorch.activation_memory_budget == 1.0
    torch._dynamo.reset()
    assert saved[0.4] < 0.8 * saved[1.0], saved
    plain = sharp_model(tiny_model_dir)
    need = [
        memory.estimate_peak_bytes(plain, 8, 1024, checkpointing=False, kernels="compile", budget=b)
        for b in (1.0, 0.4)
    ]
    assert need[1] < need[0]


@pytest.mark.parametrize("kernels", ["eager", "compiled", "graphs"])
def test_fast_path_takes_the_same_optimizer_step(tiny_model_dir, tmp_path, kernels):
    """PEFT at 4 x 2 vs the whole fast path (padding-free, lean LoRA, 8 x 1, compiled layers or not): same loss and
    same SGD update, so the micro-batch split is a speed setting only (the loss is normalised over the accumulated
    batch). graphs: `cuda_graphs` (on a CPU no graphs are recorded, but the token row is filled up to 1,024)."""
    from datasets import Dataset
    from peft import LoraConfig
    from torch.utils.data import SequentialSampler
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from codetune.train.speed import after_lora
    from codetune.train.unpad import backbone_of

    compiled = kernels != "eager"
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    data = Dataset.from_dict({"input_ids": sequences((5, 9, 30, 4, 17, 8, 12, 21), seed=3)})
    cfg = TrainConfig(
        micro_batch_size=8, effective_batch_size=8, max_length=64, padding_free="on", lora={"dropout": 0},
        compile="on" if compiled else "off", cuda_graphs=kernels == "graphs",
    )  # fmt: skip
    lora = LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.0, target_modules=STUDY_TARGETS, task_type="CAUSAL_LM"
    )
    losses, weights = {}, {}
    for name in ("plain", "fast"):
        model = sharp_model(tiny_model_dir)
        kwargs = dict(
            output_dir=str(tmp_path / name), max_steps=1, per_device_train_batch_size=4, gradient_accumulation_steps=2,
            max_length=64, report_to="none", save_strategy="no", use_cpu=True, bf16=False, logging_steps=1,
            gradient_checkpointing=False, optim="sgd", learning_rate=0.5, lr_scheduler_type="constant",
        )  # fmt: skip
        if name == "fast":
            kwargs.update(configure_fast_path(model, cfg, "cpu"))
            assert model.codetune_fast_path["padding_free"] is True
            assert (kwargs["per_device_train_batch_size"], kwargs["gradient_accumulation_steps"]) == (8, 1)
        trainer = SFTTrainer(model=model, args=SFTConfig(**kwargs), train_dataset=data, processing_class=tok,
                             peft_config=lora)  # fmt: skip
        if name == "fast":
            assert after_lora(trainer.model) == {"projections": 14, "mlps": 2}
            info = trainer.model.codetune_fast_path
            assert (info["compile"], info["lean_masks"]) == ((True, "bits") if compiled else (False, "seed"))
            assert info.get("compiled_layers", 0) == (2 if compiled else 0)
            assert info["compile_mode"] == ("reduce-overhead" if kernels == "graphs" else None)
            assert backbone_of(trainer.model)._codetune_bucket == (1024 if kernels == "graphs" else 0)
        trainer._get_train_sampler = lambda *a, **k: SequentialSampler(data)  # noqa: B023
        losses[name] = trainer.train().training_loss
        weights[name] = {k: v.clone() for k, v in trainer.model.named_parameters() if "lora_B" in k}
    assert losses["fast"] == pytest.approx(losses["plain"], rel=1e-4)
    assert len(weights["plain"]) == 14
    for key, plain in weights["plain"].items():
        assert plain.abs().max() > 1e-4  # the step moved B (it starts at zero)
        # Inductor's fused kernels sum in another order: allow fp32 rounding relative to the update's size.
        atol = 1e-3 * plain.abs().max().item() if compiled else 1e-6
        torch.testing.assert_close(weights["fast"][key], plain, rtol=1e-3, atol=atol)


@pytest.mark.parametrize(
    "script, keys",
    [
        ("train_throughput.py", {"real_tokens_per_s", "peak_memory_gib", "mfu", "loss_first_timed_step"}),
        ("generate_throughput.py", {"tokens_per_s", "new_tokens", "seconds"}),
    ],
)
def test_benchmark_smoke(script, keys, tmp_path):
    """Every path benchmarks/device_run.sh runs by default works on the tiny model (a GPU run has no time to waste)."""
    out = tmp_path / "result.json"
    args = [sys.executable, str(ROOT / "benchmarks" / script), "--config", "tiny", "--out", str(out)]
    if script == "train_throughput.py":
        paths = ["a", "b", "c", "c_graphs", "c_combo", "c_peft_budget50"]
        args += ["--warmup", "1", "--steps", "2"]
        ratios = {f"{c}/{base}" for c in paths[2:] for base in "abc" if c != base}
    else:
        paths = ["a", "b", "c", "g", "e", "f", "d", "h"]  # h: a follow-up device call's path
        ratios = {"c/a", "c/b", "d/c", "e/b", "c/e", "c/f", "g/b", "g/c", "h/d", "h/g"}
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    # torch's compile cache stays where it was (warm); everything else the script makes in TMPDIR must be gone.
    inductor = Path(tempfile.gettempdir()) / f"torchinductor_{getpass.getuser()}"
    env = {**os.environ, "TMPDIR": str(scratch), "TORCHINDUCTOR_CACHE_DIR": str(inductor)}
    proc = subprocess.run(
        args + ["--paths", ",".join(paths)], capture_output=True, text=True, timeout=400, cwd=ROOT, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in scratch.iterdir()) == []
    report = json.loads(proc.stdout)
    assert report == json.loads(out.read_text())
    assert set(report["paths"]) == set(paths)
    for path, result in report["paths"].items():
        assert "error" not in result, (path, result)
        assert keys <= set(result), (path, sorted(result))
    assert set(report["ratios"]) == ratios
    if script == "train_throughput.py":
        check = report["paths"]["c"]["check"]
        assert check["loss_rel_diff"] < 1e-3 and check["leak_max_abs_logit_change"] < 1e-4
        graphs = report["paths"]["c_graphs"]["graph_check"]
        assert set(graphs) == {"lora_grad_rel_diff_max", "replays_rel_diff_max", "accumulated_rel_diff_max"}
        assert max(graphs.values()) < 1e-3


def test_auto_compile_steps_aside_when_memory_needs_checkpointing(tiny_model_dir, monkeypatch):
    """Compiled layers under activation checkpointing are unmeasured on a GPU, so `auto` keeps the eager path there;
    an explicit `on` is obeyed. (Patched to look like CUDA with little memory; nothing runs on a GPU.)"""
    monkeypatch.setattr(speed, "liger_installed", lambda: False)
    monkeypatch.setattr(speed, "_triton_ready", lambda: True)
    small = 1.2 * sum(p.numel() * p.element_size() for p in sharp_model(tiny_model_dir).parameters())
    for switch, kernels in (("auto", "eager"), ("on", "compile")):
        model = sharp_model(tiny_model_dir)
        cfg = TrainConfig(micro_batch_size=8, effective_batch_size=16, compile=switch, padding_free="off")
        kwargs = configure_fast_path(model, cfg, "cuda", memory_bytes=small)
        assert kwargs["gradient_checkpointing"] is True
        assert model.codetune_fast_path["compile"] is (kernels == "compile")
