"""evaluate(): the eval folder's files, resume after a kill, reuse of a complete summary, settings checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codetune.bench.config import BenchConfig
from codetune.bench.evaluate import EvalTarget, evaluate, evaluate_many, is_complete
from codetune.bench.problems import Problem
from codetune.bench.problems import Test as Case
from codetune.errors import CodetuneError

SUM_PROGRAM = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"


def stdin_problem(qid: str, tests: list[tuple[str, str]], private: list[tuple[str, str]] = ()) -> Problem:
    pub = tuple(Case(i, o, "stdin") for i, o in tests)
    priv = tuple(Case(i, o, "stdin") for i, o in private)
    return Problem(
        qid, qid, f"Problem {qid}", "atcoder", "abc1", "2024-09-01T00:00:00", "", "easy", pub, priv
    )


PROBLEMS = [
    stdin_problem("sum", [("1 2\n", "3\n"), ("5 7\n", "12\n")]),
    stdin_problem("double", [("4\n", "8\n")]),
]


class Exploding:
    """A generator that must not be used: evaluate() should not need to generate."""

    backend = "none"
    tokenizer = None

    def run(self, *args, **kwargs):
        raise AssertionError("generation was not expected")


def sampled_cfg(**kw) -> BenchConfig:
    base = {"n": 2, "temperature": 1.0, "max_new_tokens": 4, "batch_size": 4, "workers": 1, "timeout": 5}
    return BenchConfig(**{**base, **kw})


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_eval_folder_files_and_consistency(tiny, tiny_model_dir: Path, tmp_path: Path) -> None:
    model, tok = tiny
    spec = str(tiny_model_dir)
    summary = evaluate(spec, PROBLEMS, sampled_cfg(), tmp_path, model=model, tokenizer=tok, progress=False)
    recs = lines(tmp_path / "generations.jsonl")
    assert sorted((r["question_id"], r["sample"]) for r in recs) == [
        ("double", 0),
        ("double", 1),
        ("sum", 0),
        ("sum", 1),
    ]
    gens = json.loads((tmp_path / "generations.json").read_text())
    rows = json.loads((tmp_path / "eval_all.json").read_text())
    assert [g["question_id"] for g in gens] == ["sum", "double"]
    assert [r["question_id"] for r in rows] == ["sum", "double"]
    by_pair = {(r["question_id"], r["sample"]): r for r in recs}
    for row in rows:
        assert len(row["code_list"]) == len(row["graded_list"]) == len(row["output_list"]) == 2
        assert row["output_list"] == [by_pair[(row["question_id"], s)]["output"] for s in range(2)]
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == summary
    assert summary["tests"] == "public only"
    assert summary["total"] == 2 and summary["n"] == 2 and summary["label"] == "base"
    assert summary["problems"]["count"] == 2 and len(summary["problems"]["sha256"]) == 64
    assert (summary["prompt_style"], summary["extract"], summary["compare"]) == ("lcb", "lcb", "lcb")
    assert summary["generation"]["sequences"] == 4 and summary["generation"]["new_tokens"] > 0
    assert all(isinstance(r["hit_token_limit"], bool) for r in recs)
    assert summary["hit_token_limit"] == sum(r["hit_token_limit"] for r in recs) > 0  # 4 tokens: mostly cut
    assert 0 <= summary["cut_in_code"] <= summary["hit_token_limit"]


def test_resume_after_kill_skips_existing_pairs(tiny, tiny_model_dir: Path, tmp_path: Path) -> None:
    model, tok = tiny
    spec, cfg = str(tiny_model_dir), sampled_cfg()
    evaluate(spec, PROBLEMS, cfg, tmp_path, model=model, tokenizer=tok, progress=False)
    path = tmp_path / "generations.jsonl"
    recs = lines(path)
    # A kill mid-run: two complete records (one of them a correct program, to prove it is kept), a torn third,
    # no summary yet.
    recs[0] = {**recs[0], "question_id": "sum", "sample": 0, "output": SUM_PROGRAM}
    recs[1] = {**recs[1], "question_id": "double", "sample": 1}
    del recs[1]["hit_token_limit"]  # written by a codetune from before the flag was recorded
    torn = json.dumps(recs[2])[:15]
    path.write_text(json.dumps(recs[0]) + "\n" + json.dumps(recs[1]) + "\n" + torn)
    (tmp_path / "summary.json").unlink()

    summary = evaluate(spec, PROBLEMS, cfg, tmp_path, model=model, tokenizer=tok, progress=False)
    after = lines(path)  # every line parses: the torn line was cut before appending
    pairs = [(r["question_id"], r["sample"]) for r in after]
    assert len(pairs) == len(set(pairs)) == 4
    assert after[0]["output"] == SUM_PROGRAM
    assert summary["generation"]["sequences"] == 2  # only the two missing samples were generated
    rows = {r["question_id"]: r for r in json.loads((tmp_path / "eval_all.json").read_text())}
    assert rows["sum"]["graded_list"][0] is True
    assert summary["pass@1"] == pytest.approx(0.25 + 0.25 * (rows["sum"]["graded_list"][1] is True))
    assert summary["solved"] >= 1
    assert (
        summary["hit_token_limit"] is None and summary["cut_in_code"] is None
    )  # unknown for one answer, not 0


def test_complete_summary_is_reused_and_grading_changes_only_regrade(
    tiny, tiny_model_dir: Path, tmp_path: Path
) -> None:
    model, tok = tiny
    spec, cfg = str(tiny_model_dir), sampled_cfg(n=1, temperature=0.0)
    first = evaluate(spec, PROBLEMS, cfg, tmp_path, model=model, tokenizer=tok, progress=False)
    mtime = (tmp_path / "summary.json").stat().st_mtime_ns
    assert is_complete(tmp_path, spec, PROBLEMS, cfg)
    assert evaluate(spec, PROBLEMS, cfg, tmp_path, engine=Exploding(), progress=False) == first
    assert (tmp_path / "summary.json").stat().st_mtime_ns == mtime

    # Another extraction rule / comparison: re-extract and regrade the same outputs, no generation.
    regraded = evaluate(spec, PROBLEMS, sampled_cfg(n=1, temperature=0.0, extract="study", compare="exact"),
                        tmp_path, engine=Exploding(), progress=False)  # fmt: skip
    assert (regraded["extract"], regraded["compare"]) == ("study", "exact")
    assert not is_complete(tmp_path, spec, PROBLEMS, cfg)


def test_other_generation_settings_in_the_same_folder_are_refused(
    tiny, tiny_model_dir: Path, tmp_path: Path
) -> None:
    model, tok = tiny
    spec = str(tiny_model_dir)
    evaluate(spec, PROBLEMS[:1], sampled_cfg(n=1), tmp_path, model=model, tokenizer=tok, progress=False)
    with pytest.raises(CodetuneError, match=r"settings\.json.*max_new_tokens"):
        evaluate(
            spec,
            PROBLEMS[:1],
            sampled_cfg(n=1, max_new_tokens=5),
            tmp_path,
            engine=Exploding(),
            progress=False,
        )


def test_a_failed_first_attempt_does_not_pin_the_folder(tiny, tiny_model_dir: Path, tmp_path: Path) -> None:
    """A wrong model name fails before any answer is generated: the corrected command may use the same folder."""
    model, tok = tiny
    with pytest.raises(CodetuneError, match="nope-not-a-model"):
        evaluate(
            str(tmp_path / "nope-not-a-model"), PROBLEMS[:1], sampled_cfg(n=1), tmp_path / "e", progress=False
        )
    assert (tmp_path / "e" / "settings.json").is_file()
    spec = str(tiny_model_dir)
    summary = evaluate(
        spec, PROBLEMS[:1], sampled_cfg(n=1), tmp_path / "e", model=model, tokenizer=tok, progress=False
    )
    assert (
        summary["model"] == spec
        and json.loads((tmp_path / "e" / "settings.json").read_text())["model"] == spec
    )


def test_more_samples_extend_the_same_generations(tiny, tiny_model_dir: Path, tmp_path: Path) -> None:
    model, tok = tiny
    spec = str(tiny_model_dir)
    one = evaluate(spec, PROBLEMS[:1], sampled_cfg(n=1), tmp_path, model=model, tokenizer=tok, progress=False)
    three = evaluate(
        spec, PROBLEMS[:1], sampled_cfg(n=3), tmp_path, model=model, tokenizer=tok, progress=False
    )
    assert one["generation"]["sequences"] == 1 and three["generation"]["sequences"] == 2
    assert len(lines(tmp_path / "generations.jsonl")) == 3


def _adapter(tiny_model_dir: Path, dest: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM

    from codetune.models.tiny import save_random_adapter

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    return save_random_adapter(base, dest, targets=["q_proj", "down_proj"], std=2.0, seed=3)


def test_several_models_in_one_pass_equal_separate_evaluations(
    tiny, tiny_model_dir: Path, tmp_path: Path
) -> None:
    model, tok = tiny
    spec, cfg = str(tiny_model_dir), sampled_cfg(n=1, temperature=0.0, max_new_tokens=6, batch_size=3)
    adapter = _adapter(tiny_model_dir, tmp_path / "adapter")
    targets = [
        EvalTarget(tmp_path / "many" / "base"),
        EvalTarget(tmp_path / "many" / "ckpt", adapter, "ckpt", 5),
    ]
    kw = {"model": model, "tokenizer": tok, "progress": False}
    many = evaluate_many(spec, PROBLEMS, cfg, targets, **kw)
    alone = [
        evaluate(spec, PROBLEMS, cfg, tmp_path / "alone" / "base", **kw),
        evaluate(
            spec, PROBLEMS, cfg, tmp_path / "alone" / "ckpt", adapter=adapter, label="ckpt", step=5, **kw
        ),
    ]
    for m, a, name in zip(many, alone, ("base", "ckpt"), strict=True):
        assert m["label"] == a["label"] and m["step"] == a["step"] and m["settings"] == a["settings"]
        assert m["generation"]["models_batched"] == 2 and a["generation"]["models_batched"] == 1
        rows_m = json.loads((tmp_path / "many" / name / "eval_all.json").read_text())
        rows_a = json.loads((tmp_path / "alone" / name / "eval_all.json").read_text())
        keys = ("question_id", "output_list", "code_list", "graded_list")
        assert [[r[k] for k in keys] for r in rows_m] == [[r[k] for k in keys] for r in rows_a]
    outs = [json.loads((tmp_path / "many" / n / "eval_all.json").read_text()) for n in ("base", "ckpt")]
    assert outs[0][0]["output_list"] != outs[1][0]["output_list"]  # the adapter changed the answers
    # A complete target is reused, a missing one generated: only one model in this pass.
    (tmp_path / "many" / "ckpt" / "summary.json").unlink()
    (tmp_path / "many" / "ckpt" / "generations.jsonl").unlink()
    again = evaluate_many(spec, PROBLEMS, cfg, targets, **kw)
    assert again[0] == many[0] and again[1]["generation"]["models_batched"] == 1
    with pytest.raises(CodetuneError, match="same output folder"):
        evaluate_many(
            spec, PROBLEMS, cfg, [targets[0], EvalTarget(tmp_path / "many" / "base", adapter)], **kw
        )


def test_private_tests_are_recorded_and_empty_sets_refused(
    tiny, tiny_model_dir: Path, tmp_path: Path
) -> None:
    model, tok = tiny
    spec = str(tiny_model_dir)
    problems = [stdin_problem("sum", [("1 2\n", "3\n")], private=[("2 2\n", "4\n")])]
    summary = evaluate(spec, problems, sampled_cfg(n=1), tmp_path, model=model, tokenizer=tok, progress=False)
    assert summary["tests"] == "public+private"
    with pytest.raises(CodetuneError, match="no problems"):
        evaluate(spec, [], sampled_cfg(), tmp_path / "x", model=model, tokenizer=tok, progress=False)


def test_cli_flags_override_override_and_config(tmp_path: Path) -> None:
    from codetune.cli.bench_cmd import build_config

    cfg_file = tmp_path / "bench.yaml"
    cfg_file.write_text(
        "n: 4\ntemperature: 0.2\nmax_new_tokens: 64\nfilter:\n  platform: [leetcode]\n  limit: 9\n"
    )
    cfg = build_config(
        cfg_file, ["max_new_tokens=128", "filter.limit=3"], {"n": 2, "platform": ["atcoder"], "end": None}
    )
    assert (cfg.n, cfg.temperature, cfg.max_new_tokens) == (2, 0.2, 128)
    assert (cfg.filter.platform, cfg.filter.limit) == (["atcoder"], 3)
    with pytest.raises(CodetuneError, match="prompt_style"):
        build_config(cfg_file, [], {"prompt_style": "fancy"})


@pytest.mark.slow
def test_real_model_end_to_end(real_model_spec: str, tmp_path: Path) -> None:
    """The real 0.5B model answers 2 quickstart problems; files and numbers agree (the score is not asserted)."""
    from codetune.bench.config import ProblemFilter
    from codetune.bench.problems import load_problems

    problems = load_problems("builtin:quickstart", ProblemFilter(limit=2))
    cfg = BenchConfig(max_new_tokens=256, batch_size=2, workers=2)
    summary = evaluate(real_model_spec, problems, cfg, tmp_path, progress=False)
    gen = summary["generation"]
    print(
        f"\nreal model on CPU: {gen['new_tokens']} tokens in {gen['seconds']} s = {gen['tokens_per_s']} tok/s"
    )
    rows = json.loads((tmp_path / "eval_all.json").read_text())
    recs = lines(tmp_path / "generations.jsonl")
    assert len(rows) == len(recs) == summary["total"] == 2
    assert all(r["output"].strip() for r in recs)
    assert summary["solved"] == sum(any(r["graded_list"]) for r in rows)
    assert summary["pass@1"] == pytest.approx(sum(r["pass@1"] for r in rows) / 2)
    for r in rows:
        assert r["code_list"][0] == next(x["code"] for x in recs if x["question_id"] == r["question_id"])
        assert len(r["metadata"]) == 1
    assert 0 < gen["new_tokens"] <= 2 * 256 and gen["tokens_per_s"] > 0


def test_answers_cut_inside_their_program_are_told_apart() -> None:
    """Reaching the limit after the code block (in the closing explanation) leaves a gradable program; inside it,
    not."""
    from codetune.bench.evaluate import _Pending, _token_limit_counts

    outputs = {
        ("sum", 0): ("```python\nprint(1)\n```\nThis works because", True),  # cut after the program
        ("sum", 1): ("Plan:\n```python\nfor i in range(", True),  # cut inside it
        ("double", 0): ("```python\nprint(2)\n```", False),
        ("double", 1): ("Thinking about it step by step, the", True),  # cut before any code
    }
    p = _Pending(EvalTarget(Path("unused")), {}, Path("unused"))
    p.records = {k: {"output": o, "hit_token_limit": hit} for k, (o, hit) in outputs.items()}
    # both rules: the program cut mid-line, and the prose-only answer (graded as the whole text, or as nothing)
    for rule in ("study", "lcb"):
        assert _token_limit_counts(p, PROBLEMS, 2, rule) == {"hit_token_limit": 3, "cut_in_code": 2}
    p.records[("sum", 0)]["output"] = (
        "```python\nprint(1)\n```\nAlso:\n```python\nprint("  # a second block cut
    )
    assert (
        _token_limit_counts(p, PROBLEMS, 2, "study")["cut_in_code"] == 2
    )  # study grades the complete first one
    assert (
        _token_limit_counts(p, PROBLEMS, 2, "lcb")["cut_in_code"] == 3
    )  # lcb's last two fences: not the program
