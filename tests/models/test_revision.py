"""Which weights a run and an evaluation used: the hub snapshot's commit, or the catalog GGUF's sha256."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from codetune.models.catalog import get_entry
from codetune.models.load import model_revision

FIRST, SECOND = "a" * 40, "b" * 40


def cache_snapshot(cache: Path, model_dir: Path, commit: str) -> None:
    """`someorg/tiny-coder` in a Hugging Face hub cache, `main` pointing at `commit`."""
    repo = cache / "models--someorg--tiny-coder"
    if not (repo / "snapshots" / commit).is_dir():
        shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch, tiny_model_dir) -> Path:
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    cache_snapshot(cache, tiny_model_dir, FIRST)
    return cache


def test_a_hub_model_is_pinned_by_its_snapshot_commit(hub_cache, tiny_model_dir):
    assert model_revision("someorg/tiny-coder") == FIRST
    cache_snapshot(hub_cache, tiny_model_dir, SECOND)
    assert model_revision("someorg/tiny-coder") == SECOND
    assert model_revision(f"someorg/tiny-coder@{FIRST}") == FIRST
    assert model_revision("someorg/not-downloaded") is None


def test_catalog_folder_and_non_models(tiny_model_dir):
    name = "qwen2.5-coder-0.5b-instruct"
    assert model_revision(name) == f"sha256:{get_entry(name).sha256}"
    assert model_revision(str(tiny_model_dir)) is None
    assert model_revision("tiny") is None  # a label, not a model spec


def test_a_resumed_run_keeps_the_weights_it_started_on(hub_cache, tiny_model_dir, tmp_path, monkeypatch):
    """The hub id's snapshot moved on between the start and the resume: the run resumes on the commit it recorded
    (an adapter trained on two different bases would be worthless); a spec pinned to a moved branch is refused."""
    import json
    import sys

    import codetune.models.load as load
    from codetune.errors import CodetuneError
    from codetune.train import train

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
    from sft_fixtures import fast_config, make_splits

    out = tmp_path / "run"
    train("someorg/tiny-coder", make_splits(), fast_config(epochs=1), out, progress=False)
    run = json.loads((out / "run.json").read_text())
    assert run["base_model_revision"] == FIRST
    (out / "run.json").write_text(json.dumps({**run, "status": "running"}))
    cache_snapshot(hub_cache, tiny_model_dir, SECOND)
    loaded = []
    real_load = load.load_model
    monkeypatch.setattr(load, "load_model", lambda spec, **kw: loaded.append(spec) or real_load(spec, **kw))
    monkeypatch.setattr("codetune.models.load_model", load.load_model)
    train("someorg/tiny-coder", make_splits(), fast_config(epochs=1), out, resume=True, progress=False)
    assert loaded == [f"someorg/tiny-coder@{FIRST}"]

    pinned = tmp_path / "pinned"
    train("someorg/tiny-coder@main", make_splits(), fast_config(epochs=1), pinned, progress=False)
    run = json.loads((pinned / "run.json").read_text())
    (pinned / "run.json").write_text(json.dumps({**run, "status": "running", "base_model_revision": FIRST}))
    with pytest.raises(CodetuneError, match=f"base_model_revision: .* at {FIRST}, which now loads {SECOND}"):
        train(
            "someorg/tiny-coder@main",
            make_splits(),
            fast_config(epochs=1),
            pinned,
            resume=True,
            progress=False,
        )


def test_an_evaluation_records_the_commit(hub_cache, tmp_path):
    from codetune.bench.config import BenchConfig
    from codetune.bench.evaluate import evaluate
    from codetune.bench.problems import load_problems

    problems = load_problems("builtin:quickstart")[:1]
    cfg = BenchConfig(max_new_tokens=4, batch_size=1)
    summary = evaluate("someorg/tiny-coder", problems, cfg, tmp_path / "eval", progress=False)
    assert summary["model_revision"] == FIRST


def test_checkpoints_are_graded_on_the_weights_they_were_trained_on(hub_cache, tiny_model_dir, tmp_path):
    """The hub id's `main` moved on after training: the sweep (and `codetune run`'s eval stage) and `codetune eval
    --adapter` load the commit the runs recorded, for the base model too; runs trained on different commits are
    refused."""
    import json
    import sys

    from codetune.bench.config import BenchConfig
    from codetune.bench.evaluate import evaluate
    from codetune.bench.problems import load_problems
    from codetune.bench.sweep import sweep_runs
    from codetune.errors import CodetuneError
    from codetune.train import train

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
    from sft_fixtures import fast_config, make_splits

    run = tmp_path / "run"
    train("someorg/tiny-coder", make_splits(), fast_config(epochs=1, save_steps=100), run, progress=False)
    cache_snapshot(hub_cache, tiny_model_dir, SECOND)
    problems = load_problems("builtin:quickstart")[:1]
    cfg = BenchConfig(max_new_tokens=4, batch_size=2)
    sweep_runs([run], "someorg/tiny-coder", problems, cfg, base_dir=tmp_path / "base", progress=False)
    for summary in [tmp_path / "base" / "summary.json", *run.glob("eval/*/summary.json")]:
        recorded = json.loads(summary.read_text())
        assert (recorded["model"], recorded["model_revision"]) == ("someorg/tiny-coder", FIRST), summary

    evaluate("someorg/tiny-coder", problems, cfg, tmp_path / "one", adapter=run / "adapter", progress=False)
    assert json.loads((tmp_path / "one" / "summary.json").read_text())["model_revision"] == FIRST

    other = tmp_path / "other"
    shutil.copytree(run, other)
    info = json.loads((other / "run.json").read_text())
    (other / "run.json").write_text(json.dumps({**info, "base_model_revision": SECOND}))
    with pytest.raises(CodetuneError, match="trained on different base weights"):
        sweep_runs([run, other], "someorg/tiny-coder", problems, cfg, progress=False)
