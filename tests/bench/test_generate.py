"""Generation with the tiny model: left-padded batches, LoRA adapters, sampling, stop strings, backend choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from codetune.bench.decode import DecodeLoop
from codetune.bench.generate import Decoding, Job, pick_backend, truncate_at_stop
from codetune.bench.generate_hf import HFGenerator
from codetune.errors import CodetuneError

# Raw prompts of different lengths: the tiny random model continues each one differently.
PROMPTS = [
    "def add(a, b):",
    "The quick brown fox jumps over the lazy dog " * 5,
    "import numpy as np\nx =",
    "Once upon a time, in a land far away, there lived a",
]


def _uncompiled_fast_batches(gen: HFGenerator) -> HFGenerator:
    """`gen` batches as on CUDA (static cache, fixed batch shapes, the decoding loop when asked), without compiling."""
    gen._fast_kwargs = lambda: {"cache_implementation": "static"}
    return gen


def test_batched_greedy_equals_unbatched(tiny) -> None:
    model, tok = tiny
    dec = Decoding(max_new_tokens=10)
    batched = HFGenerator(model, tok, batch_size=4).generate(PROMPTS, dec)
    single = [HFGenerator(model, tok, batch_size=1).generate([p], dec)[0] for p in PROMPTS]
    assert batched == single
    assert len({o[0] for o in batched}) == len(PROMPTS)  # distinct continuations: padding mistakes would show


def test_greedy_samples_are_filled_and_counted(tiny) -> None:
    model, tok = tiny
    seen: dict[tuple[str, int], str] = {}
    jobs = [Job("a", PROMPTS[0], (0, 2)), Job("b", PROMPTS[2], (1,))]
    stats = HFGenerator(model, tok, 8).run(
        jobs,
        Decoding(n=3, max_new_tokens=6),
        on_result=lambda k, s, t, _cut: seen.__setitem__((k, s), t),
        progress=False,
    )
    assert set(seen) == {("a", 0), ("a", 2), ("b", 1)}
    assert seen[("a", 0)] == seen[("a", 2)]
    assert stats.sequences == 2  # greedy: one row per prompt
    assert 0 < stats.new_tokens <= 2 * 6


def test_answers_that_reach_the_token_limit_unfinished_are_flagged(tiny) -> None:
    model, tok = tiny

    def flags(max_new_tokens: int) -> list[bool]:
        seen: dict[str, bool] = {}
        jobs = [Job(str(i), p, (0,)) for i, p in enumerate(PROMPTS[:2])]
        HFGenerator(model, tok, 4).run(
            jobs, Decoding(max_new_tokens=max_new_tokens), on_result=lambda k, s, t, cut: seen.__setitem__(k, cut),
            progress=False,
        )  # fmt: skip
        return [seen["0"], seen["1"]]

    assert flags(3) == [True, True]  # the random model ends no answer within 3 tokens
    first = HFGenerator(model, tok, 4).generate_ids(
        [tok(PROMPTS[0], add_special_tokens=False)["input_ids"]], Decoding(max_new_tokens=1)
    )[0][0]
    eos = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = first  # now the first answer ends at its first token
    try:
        assert flags(1) == [False, True] and flags(3) == [False, True]
    finally:
        model.generation_config.eos_token_id = eos


@pytest.mark.parametrize("decode_loop", [False, True], ids=["generate", "decode_loop"])
def test_progress_shows_tokens_within_a_batch(tiny, decode_loop, capsys) -> None:
    """A long batch (an hour of CPU decoding at 2,048 tokens) reports its tokens as it goes, not only when it ends."""
    model, tok = tiny
    gen = HFGenerator(model, tok, 4, decode_loop=decode_loop)
    if decode_loop:
        _uncompiled_fast_batches(gen)
        gen._loop = DecodeLoop(compile=False, check_every=2)
    ticks: list[int] = []
    gen_steps = gen._batches

    def watched(*args, **kwargs):
        assert gen._on_step is not None
        shown = gen._on_step
        gen._on_step = lambda n: (ticks.append(n), shown(n))
        yield from gen_steps(*args, **kwargs)

    gen._batches = watched
    gen.run(
        [Job("a", PROMPTS[0], (0,))], Decoding(max_new_tokens=6), on_result=lambda *a: None, progress=True
    )
    assert ticks and ticks == sorted(ticks) and ticks[-1] <= 6
    assert len(ticks) >= (2 if decode_loop else 5) or ticks[-1] < 6  # fewer only if the row ended early
    assert f"batch at {ticks[-1]}/6 tokens" in capsys.readouterr().out
    assert gen._on_step is None  # nothing left behind for calls without progress


@pytest.mark.parametrize("decode_loop", [False, True], ids=["generate", "decode_loop"])
def test_sampling_is_seeded_and_varies(tiny, decode_loop) -> None:
    model, tok = tiny
    dec = Decoding(n=3, temperature=1.0, top_p=0.95, max_new_tokens=8, seed=3)
    gen = HFGenerator(model, tok, 8, decode_loop=decode_loop)
    if decode_loop:
        _uncompiled_fast_batches(gen)
    first, again = gen.generate(PROMPTS[:2], dec), gen.generate(PROMPTS[:2], dec)
    assert (gen._loop is not None) == decode_loop
    assert first == again
    assert len(set(first[0])) > 1


def test_stop_strings_truncate(tiny) -> None:
    model, tok = tiny
    gen = HFGenerator(model, tok, 4)
    full = gen.generate(PROMPTS, Decoding(max_new_tokens=10))
    stop = full[0][0][2:6]  # a piece from inside the first continuation
    assert stop
    stopped = gen.generate(PROMPTS[:1], Decoding(max_new_tokens=10, stop=(stop,)))
    assert stopped[0][0] == truncate_at_stop(full[0][0], [stop])
    assert stop not in stopped[0][0]


def test_decode_loop_gives_generates_texts(tiny) -> None:
    """codetune's decoding loop (used for compiled greedy batches; run uncompiled here) answers as `generate` does,
    stop strings and end-of-turn included."""
    model, tok = tiny
    want = HFGenerator(model, tok, 4).generate(PROMPTS, Decoding(max_new_tokens=12))
    stop = want[1][0][3:5]
    want_stopped = HFGenerator(model, tok, 4).generate(PROMPTS, Decoding(max_new_tokens=12, stop=(stop,)))
    gen = _uncompiled_fast_batches(HFGenerator(model, tok, 4, decode_loop=True))
    assert gen.generate(PROMPTS, Decoding(max_new_tokens=12)) == want
    assert gen.generate(PROMPTS, Decoding(max_new_tokens=12, stop=(stop,))) == want_stopped
    assert gen._loop is not None and not gen._eager


def test_bench_config_switches_the_decoding_loop(tiny) -> None:
    from codetune.bench.config import BenchConfig
    from codetune.bench.generate import make_generator
    from codetune.configio import validate

    model, tok = tiny
    assert make_generator("tiny", BenchConfig(), model=model, tokenizer=tok).decode_loop
    cfg = validate(BenchConfig, {"decode_loop": "off"}, "bench.yaml")  # YAML's on/off booleans
    assert not make_generator("tiny", cfg, model=model, tokenizer=tok).decode_loop


def test_truncate_at_stop() -> None:
    assert truncate_at_stop("abc```def", ["```", "c"]) == "ab"
    assert truncate_at_stop("abc", []) == "abc"
    assert truncate_at_stop("abc", ["", "zz"]) == "abc"


def _make_adapter(tiny_model_dir: Path, dest: Path, nonzero_b: bool) -> Path:
    import torch
    from transformers import AutoModelForCausalLM

    from codetune.models.tiny import save_random_adapter

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    targets = ["q_proj", "v_proj", "down_proj"]
    return save_random_adapter(base, dest, targets=targets, std=2.0 if nonzero_b else None, seed=1)


def test_adapter_changes_outputs_and_is_removed_after(tiny, tiny_model_dir: Path, tmp_path: Path) -> None:
    model, tok = tiny
    gen = HFGenerator(model, tok, 4)
    dec = Decoding(max_new_tokens=8)
    base = gen.generate(PROMPTS, dec)
    trained = gen.generate(PROMPTS, dec, adapter=_make_adapter(tiny_model_dir, tmp_path / "b", True))
    fresh = gen.generate(PROMPTS, dec, adapter=_make_adapter(tiny_model_dir, tmp_path / "zero", False))
    assert trained != base
    assert fresh == base  # LoRA's B starts at zero: a fresh adapter is the identity
    assert gen.generate(PROMPTS, dec) == base  # the base model is restored after each adapter
    assert not hasattr(model, "peft_config") or not model.peft_config


def test_mixed_adapter_batches_equal_one_model_at_a_time(tiny, tiny_model_dir: Path, tmp_path: Path) -> None:
    """Base + two adapters in shared batches (PEFT adapter_names) give each model's own answers."""
    model, tok = tiny
    dec = Decoding(max_new_tokens=8)
    from safetensors.torch import load_file, save_file

    one = _make_adapter(tiny_model_dir, tmp_path / "one", True)
    two = _make_adapter(tiny_model_dir, tmp_path / "two", True)
    weights = load_file(str(two / "adapter_model.safetensors"))
    save_file({k: -v for k, v in weights.items()}, str(two / "adapter_model.safetensors"))
    adapters = [None, one, two]
    alone = [HFGenerator(model, tok, 4).generate(PROMPTS, dec, adapter=a) for a in adapters]
    assert len({str(x) for x in alone}) == 3  # three different models

    seen: dict[tuple[str, int], str] = {}
    jobs = [Job(f"{m}/{i}", p, (0,), a) for m, a in enumerate(adapters) for i, p in enumerate(PROMPTS)]
    gen = HFGenerator(model, tok, batch_size=5)  # batches straddle the models
    gen.run(jobs, dec, on_result=lambda k, s, t, _cut: seen.__setitem__((k, s), t), progress=False)
    mixed = [[[seen[(f"{m}/{i}", 0)]] for i in range(len(PROMPTS))] for m in range(3)]
    assert mixed == alone
    assert not hasattr(model, "peft_config") or not model.peft_config  # every adapter is removed after
    assert HFGenerator(model, tok, 4).generate(PROMPTS, dec) == alone[0]


@pytest.mark.parametrize("decode_loop", [False, True], ids=["generate", "decode_loop"])
def test_failed_compile_falls_back_to_eager_with_the_same_answers(
    tiny, monkeypatch, capsys, decode_loop
) -> None:
    """If the compiled path raises (an unsupported setup on some GPU stack), the run goes on eagerly."""
    import torch

    import codetune.bench.speed as speed

    model, tok = tiny
    dec = Decoding(max_new_tokens=6)
    eager = HFGenerator(model, tok, 2, compile=False).generate(PROMPTS, dec)
    if decode_loop:

        def broken_compile(fn, **kwargs):
            def call(*args, **kw):
                raise RuntimeError("bogus backend")

            return call

        monkeypatch.setattr(torch, "compile", broken_compile)
    else:
        monkeypatch.setattr(
            speed, "fast_generate_kwargs", lambda m, compile=None: {"cache_implementation": "bogus"}
        )
    gen = HFGenerator(model, tok, 2, compile=True, decode_loop=decode_loop)
    assert gen.generate(PROMPTS, dec) == eager
    printed = capsys.readouterr().out
    assert gen._eager and "continuing without torch.compile" in printed
    assert "bogus" in printed  # the reason, not just the exception's type


def test_missing_adapter_folder_is_a_user_error(tiny, tmp_path: Path) -> None:
    model, tok = tiny
    with pytest.raises(CodetuneError, match="adapter_config.json"):
        HFGenerator(model, tok).generate(PROMPTS[:1], Decoding(max_new_tokens=2), adapter=tmp_path)


def test_pick_backend() -> None:
    import importlib.util

    assert pick_backend("hf") == "hf"
    if importlib.util.find_spec("vllm") is None:
        assert pick_backend("auto") == "hf"
        with pytest.raises(CodetuneError, match="vllm is not installed"):
            pick_backend("vllm")


SCRIPT_PROMPT, SCRIPT = "Answer:\n", "Plan it.\n```python\nprint(7)\n```\nThat prints seven."


@pytest.mark.parametrize("path", ["continuous", "generate", "decode_loop"])
def test_an_answer_ends_once_its_program_is_complete(tiny_model_dir, path) -> None:
    """With `stop_at_program` a row ends at the fence that closes its first ```python block, on every decoding path:
    the program the study rule grades is the same as without it, fewer tokens are made, and it is not flagged as cut."""
    from scripted import scripted_model

    from codetune.bench.extract import extract_code

    model, tok, _ = scripted_model(tiny_model_dir, SCRIPT_PROMPT, SCRIPT)

    def answer(stop_at_program: bool) -> tuple[str, bool, int]:
        gen = HFGenerator(model, tok, 4, decode_loop=path == "decode_loop")
        if path != "continuous":
            _uncompiled_fast_batches(gen)
        seen: list[tuple[str, bool]] = []
        stats = gen.run(
            [Job("q", SCRIPT_PROMPT, (0,))],
            Decoding(max_new_tokens=40, stop_at_program=stop_at_program),
            on_result=lambda _k, _s, text, cut: seen.append((text, cut)),
            progress=False,
        )
        return seen[0][0], seen[0][1], stats.new_tokens

    full, full_cut, full_tokens = answer(False)
    ended, ended_cut, ended_tokens = answer(True)
    assert full.startswith(SCRIPT) and full_cut and full_tokens == 40
    assert ended == "Plan it.\n```python\nprint(7)\n```" and not ended_cut
    assert extract_code(ended, "study") == extract_code(full, "study") == "print(7)"
    # per step the paths stop at the fence's token; the decoding loop looks every 32 tokens
    ids = tok(SCRIPT)["input_ids"]
    fence = next(i for i in range(len(ids)) if tok.decode(ids[:i]).endswith("```\n"))  # the token closing it
    assert ended_tokens == (32 if path == "decode_loop" else fence)


def test_decoding_ends_at_the_program_only_with_the_study_rule() -> None:
    from codetune.bench.config import BenchConfig

    assert Decoding.from_config(BenchConfig(extract="study")).stop_at_program
    assert not Decoding.from_config(BenchConfig(extract="lcb")).stop_at_program
    assert not Decoding.from_config(BenchConfig(extract="study", stop_at_program=False)).stop_at_program
    dec = Decoding(stop=("STOP",), stop_at_program=True)
    assert dec.finish("a```python\nx\n```\nmore STOP b") == "a```python\nx\n```"
    assert dec.finish("```python\nx STOP\n```") == "```python\nx "
    assert (
        dec.stopped("so far STOP") and dec.stopped("```python\nx\n```") and not dec.stopped("```python\nx\n")
    )
