"""Hub ids on the command line, served by a local stand-in for the hub (tests/fake_hub.py): a model, a dataset and a
LiveCodeBench release, each through the libraries' real requests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "src" / "codetune" / "bench" / "builtin" / "quickstart.jsonl"
LCB = "livecodebench/code_generation_lite"


@pytest.fixture
def hub(fake_hub, tiny_model_dir: Path):
    """The tiny model as someone/tiny-qwen, the Deep sample set as someone/deep, and the shipped problems split
    over LiveCodeBench's first two release files (v1: the first 4, v2: the other 6)."""
    fake_hub.add_repo(
        "someone/tiny-qwen",
        {
            str(f.relative_to(tiny_model_dir)): f.read_bytes()
            for f in tiny_model_dir.rglob("*")
            if f.is_file()
        },
    )
    deep = ROOT / "src" / "codetune" / "data" / "samples" / "deep.jsonl"
    fake_hub.add_repo(
        "datasets/someone/deep", {"data/train.jsonl": deep.read_bytes(), "README.md": b"# deep\n"}
    )
    lines = [line + "\n" for line in QUICKSTART.read_text().splitlines() if line.strip()]
    fake_hub.add_repo(
        f"datasets/{LCB}",
        {"test.jsonl": "".join(lines[:4]).encode(), "test2.jsonl": "".join(lines[4:]).encode()},
    )
    fake_hub.ids = [json.loads(line)["question_id"] for line in lines]
    return fake_hub


def codetune(hub, home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "codetune.cli", *args], capture_output=True, text=True, env=hub.env(home)
    )


def test_eval_takes_the_model_and_a_release_by_hub_id(hub, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    args = ["eval", "--model", "someone/tiny-qwen", "--problems", LCB, "--release", "v2", "--limit", "2"]
    r = codetune(hub, tmp_path / "hf", *args, "--max-new-tokens", "4", "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    # --no-progress: no download or weight-loading bars either
    assert "it/s]" not in r.stderr, r.stderr[-3000:]
    assert "2 of 2 answers reached the 4-token limit unfinished" in " ".join(r.stdout.split()), r.stdout
    graded = [row["question_id"] for row in json.loads((out / "eval_all.json").read_text())]
    assert graded == hub.ids[4:6]  # v2 is test2.jsonl alone
    assert json.loads((out / "summary.json").read_text())["model"] == "someone/tiny-qwen"
    assert [line for line in hub.requests if line.startswith(f"GET /datasets/{LCB}/")] == [
        f"GET /datasets/{LCB}/resolve/main/test2.jsonl"
    ]


def test_data_commands_take_hub_ids(hub, tmp_path: Path) -> None:
    r = codetune(hub, tmp_path / "hf", "data", "inspect", "someone/deep", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    splits = json.loads(r.stdout)["splits"]
    assert {s: splits[s]["rows"] for s in ("train", "valid", "test")} == {"train": 17, "valid": 4, "test": 4}
    args = ["data", "check", "someone/deep", "--problems", LCB, "--release", "release_v2", "--json"]
    r = codetune(hub, tmp_path / "hf", *args)
    assert r.returncode == 0, r.stderr[-3000:]
    found = json.loads(r.stdout)
    assert found["benchmark_problems"] == 10 and found["rows"] == 25  # release_v2 = test.jsonl + test2.jsonl
    r = codetune(hub, tmp_path / "hf", "data", "inspect", "someone/missing")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: someone/missing: could not load the hub dataset"), r.stderr


def test_a_model_revision_is_pinned_with_at(hub, tiny_model_dir: Path, tmp_path: Path) -> None:
    files = {
        str(f.relative_to(tiny_model_dir)): f.read_bytes() for f in tiny_model_dir.rglob("*") if f.is_file()
    }
    config = json.loads(files["config.json"])
    one_layer = {"num_hidden_layers": 1, "layer_types": config["layer_types"][:1]}
    files["config.json"] = json.dumps({**config, **one_layer}).encode()
    sha = hub.add_repo("someone/tiny-qwen", files, revision="v1")  # main keeps 2 layers

    def layers(spec: str) -> int:
        r = codetune(hub, tmp_path / "hf", "model", "info", spec, "--json")
        assert r.returncode == 0, r.stderr[-3000:]
        return json.loads(r.stdout)["layers"]

    assert (
        layers("someone/tiny-qwen"),
        layers("someone/tiny-qwen@v1"),
        layers(f"someone/tiny-qwen@{sha}"),
    ) == (2, 1, 1)
    out = tmp_path / "eval"
    args = ["eval", "--model", "someone/tiny-qwen@v1", "--problems", "builtin:quickstart", "--limit", "1"]
    r = codetune(hub, tmp_path / "hf", *args, "--max-new-tokens", "2", "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["model"] == "someone/tiny-qwen@v1"
    assert f"GET /someone/tiny-qwen/resolve/{sha}/model.safetensors" in hub.requests
    r = codetune(hub, tmp_path / "hf", "model", "info", "someone/tiny-qwen@no-such-branch")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: someone/tiny-qwen: could not read the model config"), r.stderr
