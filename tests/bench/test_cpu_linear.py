"""oneDNN linear layers for CPU decoding: the same numbers as `F.linear`, used only where meant, gone afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from codetune.bench import cpu_linear
from codetune.bench.generate import Decoding
from codetune.bench.generate_hf import HFGenerator

pytestmark = pytest.mark.skipif(not cpu_linear.available(), reason="this torch build has no oneDNN linear")

PROMPTS = ["def add(a, b):", "import numpy as np\nx =", "Once upon a time, in a land far away, there lived a"]


def onednn_calls(fn) -> int:
    """How many times `fn` runs oneDNN's linear kernel."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return sum(e.count for e in prof.key_averages() if e.key == "mkldnn::_linear_pointwise")


def linears(model) -> list[torch.nn.Module]:
    return [m for m in model.modules() if type(m) is torch.nn.Linear]


def test_a_few_rows_go_through_onednn_with_the_same_logits(tiny) -> None:
    model, _ = tiny
    ids = torch.tensor([[5, 9, 14], [7, 7, 2]])  # 6 rows, as in a decoding step of 6 sequences
    with torch.inference_mode():
        plain = model(ids).logits
        with cpu_linear.onednn_linears(model):
            calls = onednn_calls(lambda: model(ids))
            fast = model(ids).logits
    assert calls == len(linears(model))  # the LM head included
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)
    assert not any("forward" in vars(m) for m in linears(model))


def test_prefill_sized_inputs_and_training_keep_f_linear(tiny) -> None:
    model, _ = tiny
    long = torch.randint(2, 1000, (2, cpu_linear.MAX_ROWS))
    with cpu_linear.onednn_linears(model):
        with torch.inference_mode():
            assert onednn_calls(lambda: model(long)) == 0
            assert onednn_calls(lambda: model(long[:, :3])) > 0
        assert onednn_calls(lambda: model(long[:, :3]).logits.sum().backward()) == 0
    model.zero_grad(set_to_none=True)


def test_switched_off_by_the_environment_setting(tiny, monkeypatch) -> None:
    model, _ = tiny
    monkeypatch.setattr(cpu_linear, "ENABLED", False)
    with cpu_linear.onednn_linears(model), torch.inference_mode():
        assert onednn_calls(lambda: model(torch.tensor([[5, 9, 14]]))) == 0


def test_cpu_generation_uses_it_and_answers_the_same(tiny, monkeypatch) -> None:
    model, tok = tiny
    gen = HFGenerator(model, tok, batch_size=3)
    dec = Decoding(max_new_tokens=8)
    fast: list[list[str]] = []
    assert onednn_calls(lambda: fast.extend(gen.generate(PROMPTS, dec))) > 0
    monkeypatch.setattr(cpu_linear, "ENABLED", False)
    plain: list[list[str]] = []
    assert onednn_calls(lambda: plain.extend(gen.generate(PROMPTS, dec))) == 0
    assert plain == fast
    assert not any("forward" in vars(m) for m in linears(model))


def test_cpu_generate_benchmark_runs_every_path(tiny_model_dir: Path, tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "cpu_generate.json"
    args = [
        "--model",
        str(tiny_model_dir),
        "--problems",
        "3",
        "--max-new-tokens",
        "4",
        "--min-new-tokens",
        "4",
        "--paths",
        "mkl,onednn,continuous,continuous@2,catcache",
    ]
    proc = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "cpu_generate.py"), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["paths"]) == {"mkl", "onednn", "continuous", "continuous@2", "catcache"}
    assert (
        report["paths"]["continuous@2"]["batch_size"] == 2
        and report["paths"]["continuous"]["batch_size"] == 8
    )
    assert set(report["speedup_vs_first_path"]) == set(report["paths"])
    for p in report["paths"].values():
        assert p["new_tokens"] == 3 * 4 and p["tokens_per_s"] > 0 and p["rows_equal_to_first_path"] == "3/3"
    assert report["ratio_onednn_mkl_tokens_per_s"] > 0 and report["ratio_continuous_onednn_seconds"] > 0
    assert report["ratio_continuous_catcache_seconds"] > 0
