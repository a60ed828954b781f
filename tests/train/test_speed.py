"""codetune's fast training path: same loss as the padded path, no attention across examples, batch plan, benchmarks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from codetune.errors import CodetuneError  # noqa: E402
from codetune.train import attention, speed  # noqa: E402
from codetune.train.config import STUDY_TARGETS, TrainConfig  # noqa: E402
from codetune.train.speed import compare_paths, configure_fast_path, plan_batches, unpad_backbone  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PAD = 151643
LENGTHS = (7, 23, 3, 16, 11)


def _sequences(lengths=LENGTHS, seed=0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(10, 5000, (n,), generator=g).tolist() for n in lengths]


def _model(tiny_model_dir: Path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    # Larger weights than the init: sharper attention, so leakage would show clearly in the logits.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8)
    return model.eval()


def _batch(seqs, completion_from: int = 0, padding_free: bool = False) -> dict:
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    rows = [
        {"input_ids": s, "completion_mask": [0] * completion_from + [1] * (len(s) - completion_from)}
        for s in seqs
    ]
    return DataCollatorForLanguageModeling(pad_token_id=PAD, padding_free=padding_free)(rows)


def _fake_varlen(calls: list):
    """A CPU stand-in with torch 2.13's varlen_attn signature, computing per-example causal attention."""

    def varlen_attn(q, k, v, cu_q, cu_k, max_q, max_k, *, return_aux=None, scale=None, window_size=(-1, -1),
                    enable_gqa=False, seqused_k=None, block_table=None, num_splits=None):  # fmt: skip
        assert window_size == (-1, 0) and enable_gqa and k.shape[1] < q.shape[1]
        calls.append(cu_q.tolist())
        return attention._reference_varlen(q, k, v, cu_q, scale)

    return varlen_attn


@pytest.fixture(params=["sdpa-block-mask", "varlen"])
def fast_model(request, tiny_model_dir, monkeypatch):
    """The tiny model on codetune's padding-free path, attention by SDPA + block mask or by a (CPU) varlen kernel."""
    model = _model(tiny_model_dir)
    calls: list = []
    if request.param == "varlen":
        monkeypatch.setattr(attention, "_varlen_fn", lambda: _fake_varlen(calls))
        monkeypatch.setattr(attention, "varlen_ready", lambda device, dtype: True)
    unpad_backbone(model, device="cuda")  # registers codetune_varlen even on this CPU model
    model.varlen_calls = calls
    return model


def test_fast_path_loss_equals_padded_loss(tiny_model_dir, fast_model):
    plain_model = _model(tiny_model_dir)
    seqs = _sequences()
    padded = _batch(seqs, completion_from=2)
    with torch.no_grad():
        plain = plain_model(**padded).loss.item()
        fast = fast_model(**padded).loss.item()
        free = fast_model(**_batch(seqs, completion_from=2, padding_free=True)).loss.item()
    assert fast == pytest.approx(plain, rel=1e-3)
    assert free == pytest.approx(plain, rel=1e-3)
    if fast_model.varlen_calls:  # the varlen kernel saw one row with the real boundaries
        assert fast_model.varlen_calls[0] == [0, 7, 30, 33, 49, 60]


def test_no_cross_example_leakage(fast_model):
    seqs = _sequences()
    changed = [[(t + 7) % 5000 for t in seqs[0]], *seqs[1:]]
    with torch.no_grad():
        before = fast_model(**_batch(seqs)).logits
        after = fast_model(**_batch(changed)).logits
    for i in range(1, len(seqs)):
        n = len(seqs[i])
        torch.testing.assert_close(after[i, :n], before[i, :n], atol=1e-5, rtol=0)
    assert (after[0, : len(seqs[0])] - before[0, : len(seqs[0])]).abs().max() > 1e-2


def test_leakage_check_can_fail(tiny_model_dir):
    """Control: the same packed row with one causal mask over everything does leak, so the check above can fail."""
    model = _model(tiny_model_dir)
    seqs = _sequences()
    changed = [[(t + 7) % 5000 for t in seqs[0]], *seqs[1:]]
    with torch.no_grad():
        before = model(input_ids=torch.tensor([sum(seqs, [])])).logits
        after = model(input_ids=torch.tensor([sum(changed, [])])).logits
    second = slice(len(seqs[0]), len(seqs[0]) + len(seqs[1]))
    assert (after[0, second] - before[0, second]).abs().max() > 1e-3


def test_compare_paths_reports_agreement(fast_model):
    report = compare_paths(fast_model, _sequences(), PAD)
    assert report["loss_rel_diff"] < 1e-3
    assert report["leak_max_abs_logit_change"] < 1e-4


def test_unpadded_backbone_passes_generation_through(tiny_model_dir, fast_model):
    plain_model = _model(tiny_model_dir)
    prompt = torch.tensor([[PAD, PAD, 11, 12, 13], [21, 22, 23, 24, 25]])
    mask = (prompt != PAD).long()
    kw = dict(attention_mask=mask, max_new_tokens=5, do_sample=False, pad_token_id=PAD)
    assert torch.equal(fast_model.generate(prompt, **kw), plain_model.generate(prompt, **kw))


@pytest.mark.parametrize("signature", ["2.13", "2.9"])
def test_varlen_call_adapts_to_torch_versions(signature):
    g = torch.Generator().manual_seed(1)
    q, k, v = (
        torch.randn(30, 6, 8, generator=g),
        torch.randn(30, 2, 8, generator=g),
        torch.randn(30, 2, 8, generator=g),
    )
    cu = torch.tensor([0, 12, 30], dtype=torch.int32)
    seen = {}

    def new(q, k, v, cu_q, cu_k, max_q, max_k, *, return_aux=None, scale=None, window_size=(-1, -1),
            enable_gqa=False):  # fmt: skip
        seen.update(window=window_size, gqa=enable_gqa, heads=k.shape[1])
        return attention._reference_varlen(q, k, v, cu_q, scale)

    def old(q, k, v, cu_q, cu_k, max_q, max_k, is_causal=False, return_aux=None):
        seen.update(causal=is_causal, heads=k.shape[1])
        return attention._reference_varlen(q, k, v, cu_q, q.shape[-1] ** -0.5)

    out = attention._call_varlen(new if signature == "2.13" else old, q, k, v, cu, 18, 8**-0.5)
    torch.testing.assert_close(out, attention._reference_varlen(q, k, v, cu, 8**-0.5))
    if signature == "2.13":
        assert seen == {"window": (-1, 0), "gqa": True, "heads": 2}
    else:  # no enable_gqa: the kv heads are repeated; no scale: only the default scale is accepted
        assert seen == {"causal": True, "heads": 6}
        with pytest.raises(RuntimeError, match="scale"):
            attention._call_varlen(old, q, k, v, cu, 18, 0.5)


def test_varlen_not_ready_on_cpu():
    assert not attention.varlen_ready("cpu", torch.bfloat16)


def test_batch_plan_keeps_the_effective_batch(tiny_model_dir):
    model = _model(tiny_model_dir)
    cfg = TrainConfig(micro_batch_size=8, effective_batch_size=16, max_length=1024)
    roomy = plan_batches(model, cfg, 80 * 2**30, kernels="liger")
    assert (roomy.micro_batch, roomy.accumulation, roomy.checkpointing) == (8, 2, False)
    grown = plan_batches(model, cfg, 80 * 2**30, kernels="liger", max_micro_batch=16)
    assert (grown.micro_batch, grown.accumulation) == (16, 1)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    tight = plan_batches(model, cfg, weights * 1.3, kernels="liger")
    assert tight.micro_batch * tight.accumulation == 16
    assert tight.micro_batch < 8 or tight.checkpointing
    forced = plan_batches(
        model, cfg.model_copy(update={"gradient_checkpointing": "on"}), 80 * 2**30, kernels="liger"
    )
    assert forced.checkpointing and forced.micro_batch == 8
    cpu = plan_batches(model, cfg, None, kernels="eager")
    assert (cpu.micro_batch, cpu.checkpointing) == (8, False)


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


def test_compiled_lean_layers_plan_bigger_batches(tiny_model_dir):
    model = _model(tiny_model_dir)
    cfg = TrainConfig(micro_batch_size=16, effective_batch_size=16, max_length=1024)
    need = speed.estimate_peak_bytes(model, 16, 1024, checkpointing=False, kernels="compile", lean=True)
    compiled = plan_batches(model, cfg, need / speed.MEMORY_FRACTION, kernels="compile", lean=True)
    liger = plan_batches(model, cfg, need / speed.MEMORY_FRACTION, kernels="liger", lean=True)
    assert (compiled.micro_batch, compiled.checkpointing) == (16, False)
    assert liger.micro_batch < 16  # Liger's eager layers keep more activations than compiled ones


def test_compile_memory_budget_reaches_the_partitioner(tiny_model_dir):
    """train.compile_memory_budget is applied only inside `training_context`, where compiled layers then keep fewer
    activations for the backward pass (and no budget leaves torch's setting alone); the batch plan expects it."""
    import torch._functorch.config as functorch
    from peft import LoraConfig, get_peft_model

    from codetune.train.speed import after_lora, saved_activation_bytes, training_context

    ids = torch.tensor(_sequences((24, 24)))
    saved = {}
    for budget in (1.0, 0.4):
        torch._dynamo.reset()
        model = _model(tiny_model_dir).train()
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
    plain = _model(tiny_model_dir)
    need = [
        speed.estimate_peak_bytes(plain, 8, 1024, checkpointing=False, kernels="compile", budget=b)
        for b in (1.0, 0.4)
    ]
    assert need[1] < need[0]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_fast_path_takes_the_same_optimizer_step(tiny_model_dir, tmp_path, compiled):
    """PEFT at 4 x 2 vs the whole fast path (padding-free, lean LoRA, 8 x 1, compiled layers or not): same loss and
    same SGD update, so the micro-batch split is a speed setting only (the loss is normalised over the accumulated
    batch)."""
    from datasets import Dataset
    from peft import LoraConfig
    from torch.utils.data import SequentialSampler
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from codetune.train.speed import after_lora

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    data = Dataset.from_dict({"input_ids": _sequences((5, 9, 30, 4, 17, 8, 12, 21), seed=3)})
    cfg = TrainConfig(
        micro_batch_size=8, effective_batch_size=8, max_length=64, padding_free="on", lora={"dropout": 0},
        compile="on" if compiled else "off",
    )  # fmt: skip
    lora = LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.0, target_modules=STUDY_TARGETS, task_type="CAUSAL_LM"
    )
    losses, weights = {}, {}
    for name in ("plain", "fast"):
        model = _model(tiny_model_dir)
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
        paths = ["a", "b", "c", "c_peft_budget50"]
        args += ["--warmup", "1", "--steps", "2"]
        ratios = {f"{c}/{ab}" for c in paths[2:] for ab in "ab"}
    else:
        paths = ["a", "b", "c", "g", "e", "f", "d", "h"]  # h: a follow-up device call's path
        ratios = {"c/a", "c/b", "d/c", "e/b", "c/e", "c/f", "g/b", "g/c", "h/d", "h/g"}
    proc = subprocess.run(
        args + ["--paths", ",".join(paths)], capture_output=True, text=True, timeout=400, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
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


def test_auto_compile_steps_aside_when_memory_needs_checkpointing(tiny_model_dir, monkeypatch):
    """Compiled layers under activation checkpointing are unmeasured on a GPU, so `auto` keeps the eager path there;
    an explicit `on` is obeyed. (Patched to look like CUDA with little memory; nothing runs on a GPU.)"""
    monkeypatch.setattr(speed, "liger_installed", lambda: False)
    monkeypatch.setattr(speed, "_triton_ready", lambda: True)
    small = 1.2 * sum(p.numel() * p.element_size() for p in _model(tiny_model_dir).parameters())
    for switch, kernels in (("auto", "eager"), ("on", "compile")):
        model = _model(tiny_model_dir)
        cfg = TrainConfig(micro_batch_size=8, effective_batch_size=16, compile=switch, padding_free="off")
        kwargs = configure_fast_path(model, cfg, "cuda", memory_bytes=small)
        assert kwargs["gradient_checkpointing"] is True
        assert model.codetune_fast_path["compile"] is (kernels == "compile")
