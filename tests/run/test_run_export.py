"""`codetune export`: which checkpoint of a run it merges, what the model card says, and its one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from codetune.errors import CodetuneError
from codetune.run.export import choose

TARGETS = ["q_proj", "v_proj", "down_proj"]


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "codetune.cli", *args], capture_output=True, text=True, env=env
    )


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder as `codetune train` + `codetune eval --run` leave it: 3 checkpoints, a loss log, a sweep."""
    from transformers import AutoModelForCausalLM

    from codetune.models.tiny import save_random_adapter

    run = tmp_path_factory.mktemp("runs") / "deep"
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    for i, step in enumerate((2, 4, 6)):
        save_random_adapter(model, run / f"checkpoint-{step}", targets=TARGETS, std=0.5, seed=i)
    data = {"dataset": "builtin:deep", "format": "chat", "response": "output", "system_prompt": "Be exact."}
    (run / "config.yaml").write_text(yaml.safe_dump({"model": str(tiny_model_dir), "data": data}))
    log = [
        {"step": s, "train_loss": 1.0, "val_loss": v, "test_loss": 0.1}
        for s, v in ((2, 0.9), (4, 0.7), (6, 0.8))
    ]
    (run / "log.json").write_text(json.dumps(log))
    rows = [
        {"label": "base", "step": None, "pass@1": 0.25, "solved": 1, "total": 4, "val_loss": None},
        *(
            {
                "label": f"checkpoint-{s}",
                "step": s,
                "pass@1": p,
                "solved": int(p * 4),
                "total": 4,
                "val_loss": v,
            }
            for s, p, v in ((2, 0.75, 0.9), (4, 0.5, 0.7), (6, 0.25, 0.8))
        ),
    ]
    (run / "eval").mkdir()
    (run / "eval" / "sweep.json").write_text(json.dumps({"rows": rows, "best": "checkpoint-2", "rule": "r"}))
    return run


def test_choices(run_dir: Path) -> None:
    assert choose(run_dir, "best").step == 2  # the sweep's pick, not the lowest test or validation loss
    assert choose(run_dir, "lowest-val").step == 4
    assert choose(run_dir, "last").step == 6
    assert choose(run_dir, "6").adapter == run_dir / "checkpoint-6"
    assert (
        choose(run_dir, "checkpoint-4").adapter == run_dir / "checkpoint-4"
    )  # the label the sweep table shows
    assert choose(run_dir, "best").benchmark["solved"] == 3
    with pytest.raises(CodetuneError, match=r"no checkpoint at step 5 .* \(steps: 2, 4, 6\)"):
        choose(run_dir, "5")
    with pytest.raises(CodetuneError, match="'newest' is not a step or one of best, last, lowest-val"):
        choose(run_dir, "newest")


def test_export_of_a_run_writes_model_card_and_provenance(run_dir: Path, tmp_path: Path) -> None:
    r = cli("export", str(run_dir), "--out", str(tmp_path / "m"), "--dtype", "float32")
    assert r.returncode == 0, r.stderr
    record = json.loads((tmp_path / "m" / "codetune-export.json").read_text())
    assert record["checkpoint"] == "checkpoint-2" and record["step"] == 2
    assert record["benchmark"]["pass@1"] == 0.75 and record["merge_max_abs_logit_diff"] < 1e-4
    card = (tmp_path / "m" / "README.md").read_text()
    assert "Training data: `builtin:deep`" in card and '"Be exact."' in card
    assert "highest pass@1 among checkpoints" in card and "Pass@1 0.750 (3/4 problems)" in card
    assert "leave-one-problem-out" in card

    # the folder is a model spec for every codetune command
    r = subprocess.run(
        [sys.executable, "-m", "codetune.cli", "model", "info", str(tmp_path / "m"), "--json"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and '"architecture": "qwen2"' in r.stdout


def test_catalog_base_names_its_hub_model_in_the_card(run_dir: Path) -> None:
    from codetune.models.export import adapter_settings
    from codetune.run.export import model_card

    choice = choose(run_dir, "lowest-val")
    lora = adapter_settings(choice.adapter)
    card = model_card("m", "qwen2.5-coder-0.5b-instruct", choice.adapter, lora, {}, choice, "bfloat16")
    assert card.startswith("---\nbase_model: Qwen/Qwen2.5-Coder-0.5B-Instruct\n")
    assert "dequantized from its Q4_K_M GGUF" in card and "lowest validation loss" in card
    assert "r=4, alpha=8" in card and "down_proj, q_proj, v_proj" in card
    assert "DoRA" not in card and "rsLoRA" not in card
    assert "flatters" not in card  # chosen by validation loss, not on the benchmark number it shows
    best = choose(run_dir, "best")
    assert "flatters this number" in model_card("m", "x", best.adapter, lora, {}, best, "bf16")
    card = model_card(
        "m", "x", choice.adapter, {**lora, "use_dora": True, "use_rslora": True}, {}, choice, "bf16"
    )
    assert "down_proj, q_proj, v_proj, rsLoRA, DoRA" in card


@pytest.mark.parametrize(
    ("edit", "args", "message"),
    [
        ("no-sweep", [], "sweep.json: not found; evaluate the checkpoints first"),
        ("base-best", [], "best is 'base': no checkpoint was picked"),
        ("no-config", [], "--model: needed"),
        ("none", ["--push-to-hub", "someone/merged"], "cannot push, the hub is unreachable"),
        # checked before the merge: nothing is written
        ("none", ["--push-to-hub", "not a repo!!"], "--push-to-hub 'not a repo!!': not a hub repo id"),
        ("none", ["--private"], "--private: only means something with --push-to-hub"),
        ("none", ["--dtype", "int4"], "--dtype: 'int4' is not one of bfloat16, float16, float32"),
        ("none", ["--model", "llama-99b"], "unknown model 'llama-99b'"),
        ("adapter", ["--checkpoint", "last"], "--checkpoint last: only applies to a run folder"),
    ],
)
def test_one_line_errors(run_dir: Path, tmp_path: Path, edit: str, args: list[str], message: str) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    sweep = run / "eval" / "sweep.json"
    if edit == "no-sweep":
        sweep.unlink()
    elif edit == "base-best":
        sweep.write_text(json.dumps({**json.loads(sweep.read_text()), "best": "base"}))
    elif edit == "no-config":
        (run / "config.yaml").unlink()
    source = run / "checkpoint-2" if edit == "adapter" else run
    r = cli("export", str(source), "--out", str(tmp_path / "m"), *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], r.stderr
    if "someone/merged" in args:  # the push failed, the merged model is kept
        assert (tmp_path / "m" / "config.json").is_file() and str(tmp_path / "m") in errors[0]
    else:
        assert not (tmp_path / "m").exists()


def push(run: Path, out: Path, hub, token: str | None, *args: str) -> subprocess.CompletedProcess:
    """`codetune export --push-to-hub` against the local stand-in for the hub (huggingface_hub's real requests)."""
    return subprocess.run(
        [sys.executable, "-m", "codetune.cli", "export", str(run), "--out", str(out), *args],
        capture_output=True,
        text=True,
        env=hub.env(out.parent / "hf-home", token),
    )


def test_push_uploads_the_merged_folder(run_dir: Path, tmp_path: Path, fake_hub) -> None:
    out = tmp_path / "m"
    r = push(run_dir, out, fake_hub, "hf_test", "--push-to-hub", "someone/merged", "--private")
    assert r.returncode == 0, r.stderr
    assert f"pushed to {fake_hub.url}/someone/merged" in " ".join((r.stdout + r.stderr).split())
    repo = fake_hub.repos["someone/merged"]
    assert repo["visibility"] == "private" and len(repo["commits"]) == 1
    local = {str(f.relative_to(out)): f.read_bytes() for f in out.rglob("*") if f.is_file()}
    assert {"README.md", "config.json", "model.safetensors", "codetune-export.json"} <= set(local)
    assert repo["files"] == local  # every file, byte for byte; the card's YAML passed the hub's validation


def test_a_hub_base_is_downloaded_merged_and_pushed(
    run_dir: Path, tiny_model_dir: Path, tmp_path: Path, fake_hub
) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "model": "someone/tiny-base"}))
    files = {
        str(f.relative_to(tiny_model_dir)): f.read_bytes() for f in tiny_model_dir.rglob("*") if f.is_file()
    }
    fake_hub.add_repo("someone/tiny-base", files)
    out = tmp_path / "m"
    r = push(run, out, fake_hub, "hf_test", "--push-to-hub", "someone/merged")
    assert r.returncode == 0, r.stderr
    assert "GET /someone/tiny-base/resolve/" in "\n".join(fake_hub.requests)
    card = (out / "README.md").read_text()
    assert card.startswith("---\nbase_model: someone/tiny-base\n")  # the hub links the model to its base
    assert json.loads((out / "codetune-export.json").read_text())["merge_max_abs_logit_diff"] < 1e-2
    assert fake_hub.repos["someone/merged"]["files"]["README.md"] == card.encode()


def test_push_without_a_token_fails_in_one_line_and_keeps_the_model(
    run_dir: Path, tmp_path: Path, fake_hub
) -> None:
    out = tmp_path / "m"
    r = push(run_dir, out, fake_hub, None, "--push-to-hub", "someone/merged")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "someone/merged: push failed" in errors[0] and "401" in errors[0], r.stderr
    assert str(out) in errors[0] and (out / "config.json").is_file()
    assert fake_hub.repos == {}


def test_adapter_folder_uses_its_runs_config(run_dir: Path, tmp_path: Path) -> None:
    r = cli("export", str(run_dir / "checkpoint-4"), "--out", str(tmp_path / "m"))
    assert r.returncode == 0, r.stderr
    record = json.loads((tmp_path / "m" / "codetune-export.json").read_text())
    assert record["checkpoint"] == "checkpoint-4" and record["chosen_by"] == "the adapter folder given"


def test_card_of_a_conversation_arm(run_dir: Path) -> None:
    from codetune.models.export import adapter_settings
    from codetune.run.export import model_card

    choice = choose(run_dir, "last")
    data = {"dataset": "d.jsonl", "columns": {"messages": "conversations"}, "system_prompt": "Be exact."}
    card = model_card(
        "m", "x", choice.adapter, adapter_settings(choice.adapter), {"data": data}, choice, "bfloat16"
    )
    assert "answer the last assistant turn of `conversations`" in card
    assert "(rows without a system turn of their own)" in card and "the run's last checkpoint" in card


def test_sweep_that_is_not_an_object(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "eval" / "sweep.json").write_text("[]")
    with pytest.raises(CodetuneError, match=r"sweep.json: expected a JSON object"):
        choose(run, "last")


@pytest.mark.parametrize("where", ["the run", "above the run", "the checkpoint", "under a file"])
def test_an_out_that_holds_the_source_is_refused_even_with_force(
    run_dir: Path, tmp_path: Path, where: str
) -> None:
    """--force replaces --out: an --out that is (or holds) the run or adapter being exported would delete it."""
    import shutil

    run = tmp_path / "exp" / "run"
    shutil.copytree(run_dir, run)
    (tmp_path / "exp" / "notes.txt").write_text("keep me\n")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    source, out = {
        "the run": (run, run),
        "above the run": (run, tmp_path / "exp"),
        "the checkpoint": (ckpt := sorted(run.glob("checkpoint-*"))[-1], ckpt),
        "under a file": (run, tmp_path / "exp" / "notes.txt" / "m"),
    }[where]
    r = cli("export", str(source), "--out", str(out), "--force")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and ("which this export reads" in errors[0] or "is a file" in errors[0]), r.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
