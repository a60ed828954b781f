"""End-to-end LoRA SFT on the tiny model: losses, run folder, checkpoints, config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from sft_fixtures import fast_config, make_splits

from codetune.errors import CodetuneError


def test_loss_decreases_on_repeated_data(trained_run):
    log = trained_run.log
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    assert log[-1]["val_loss"] < log[0]["val_loss"]


def test_log_has_val_and_test_loss_at_every_eval_step(trained_run):
    log = json.loads((trained_run.out_dir / "log.json").read_text())
    assert [r["step"] for r in log] == [2, 4]
    assert log == trained_run.log
    for r in log:
        assert set(r) >= {
            "step",
            "epoch",
            "train_loss",
            "val_loss",
            "test_loss",
            "learning_rate",
            "tokens_seen",
        }
        assert all(isinstance(r[k], float) and r[k] > 0 for k in ("train_loss", "val_loss", "test_loss"))
    assert 0 < log[0]["tokens_seen"] < log[1]["tokens_seen"]
    assert log[0]["learning_rate"] > log[-1]["learning_rate"]  # cosine decay


def test_metrics_jsonl_streams_every_log_event(trained_run):
    lines = [json.loads(x) for x in (trained_run.out_dir / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in lines if "loss" in r]
    assert train_steps == [1, 2, 3, 4]
    assert [r["step"] for r in lines if "eval_val_loss" in r] == [2, 4]
    assert [r["step"] for r in lines if "eval_test_loss" in r] == [2, 4]


def test_tokens_seen_counts_non_pad_tokens(trained_run, qwen_tokenizer):
    from trl.data_utils import apply_chat_template

    splits = make_splits()
    lengths = []
    for row in splits["train"]:
        text = apply_chat_template(row, qwen_tokenizer)
        lengths.append(len(qwen_tokenizer(text["prompt"] + text["completion"])["input_ids"]))
    epochs = 2
    assert trained_run.log[-1]["tokens_seen"] == pytest.approx(sum(lengths) * epochs, rel=0.05)


def test_run_folder_records_the_run(trained_run):
    out = trained_run.out_dir
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "complete"
    assert info["final_step"] == trained_run.final_step == 4
    assert info["dataset_sizes"] == {"train": 8, "valid": 4, "test": 4}
    assert info["data_fingerprints"] == {"data": "abc123"}
    assert {"torch", "transformers", "trl", "peft", "datasets"} <= set(info["versions"])
    assert info["device"].startswith("cpu")
    assert info["fast_path"]["lean_lora"] is True
    assert info["fast_path"]["lean_lora_patched"] == {"projections": 14, "mlps": 2}
    assert 0.05 < info["peak_memory_gib"] < 24  # the process's resident peak on a CPU
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["train"] == fast_config().model_dump(mode="json")
    assert cfg["data"] == {"dataset": "inline"}
    png = (out / "loss.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    readme = (out / "README.md").read_text()  # codetune's, not TRL's card naming no base model
    assert readme.startswith(f"# codetune training run: {out.name}\n") and "None" not in readme
    assert f"`{info['base_model']}`" in readme and "- Data: `inline`" in readme
    assert f"lowest validation loss at step {trained_run.best_val_step}" in readme


def test_best_val_step_follows_validation_loss(trained_run):
    best = min(trained_run.log, key=lambda r: r["val_loss"])["step"]
    assert trained_run.best_val_step == best


def test_checkpoints_and_final_adapter_load_with_peft(trained_run, tiny_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = trained_run.out_dir
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    for name in ("checkpoint-2", "adapter"):
        assert (out / name / "adapter_config.json").is_file()
        assert (out / name / "adapter_model.safetensors").is_file()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        ref = base(ids).logits
        model = PeftModel.from_pretrained(base, out / "adapter")
        tuned = model(ids).logits
    assert not torch.allclose(ref, tuned)  # the adapter changes the model


def test_refuses_to_overwrite_a_run_without_resume(trained_run):
    from codetune.train import train

    with pytest.raises(CodetuneError, match="--resume"):
        train("unused", make_splits(), fast_config(), trained_run.out_dir, progress=False)


def test_resume_of_a_complete_run_returns_it(trained_run, tiny_model_dir):
    from codetune.train import train

    model, out = str(tiny_model_dir), trained_run.out_dir
    result = train(model, make_splits(), fast_config(), out, resume=True, progress=False)
    assert result.final_step == 4 and result.log == trained_run.log
    # other settings are not "done": they would not be trained
    with pytest.raises(CodetuneError, match=r"config.yaml: train.max_steps was -1, now 8"):
        train(model, make_splits(), fast_config(max_steps=8), out, resume=True, progress=False)


def test_resume_with_a_changed_config_is_refused(trained_run, tiny_model_dir, tmp_path):
    import shutil

    from codetune.train import train

    run = tmp_path / "run"
    shutil.copytree(trained_run.out_dir, run)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "status": "running"}))
    with pytest.raises(CodetuneError, match=r"config.yaml: train.learning_rate"):
        train(
            str(tiny_model_dir),
            make_splits(),
            fast_config(learning_rate=1e-3),
            run,
            resume=True,
            progress=False,
        )


@pytest.mark.parametrize("budget, refused", [(1.0, False), (0.5, True)])
def test_resume_reads_a_setting_added_since_as_its_default(tmp_path, budget, refused):
    """A run begun before train.compile_memory_budget existed resumes with its default, and only with it."""
    import yaml

    from codetune.train.config import TrainConfig
    from codetune.train.run_folder import check_resumable, run_config

    saved = run_config("m", TrainConfig(), None)
    del saved["train"]["compile_memory_budget"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    wanted = run_config("m", TrainConfig(compile_memory_budget=budget), None)
    if refused:
        with pytest.raises(CodetuneError, match=r"train.compile_memory_budget was 1.0, now 0.5"):
            check_resumable(tmp_path, wanted)
    else:
        check_resumable(tmp_path, wanted)


def test_batch_sizes_must_divide(tiny_model_dir, tmp_path, monkeypatch):
    from pydantic import ValidationError

    from codetune.train import train

    with pytest.raises(
        ValidationError, match=r"effective_batch_size\n.*6 is not a multiple of micro_batch_size \(4\)"
    ):
        fast_config(effective_batch_size=6)  # caught when the config is read, before any work
    monkeypatch.setenv("WORLD_SIZE", "3")  # 4 rows per step cannot be split over 3 processes of 4
    with pytest.raises(
        CodetuneError, match=r"effective_batch_size: 4 is not a multiple of .* processes \(3\)"
    ):
        train(str(tiny_model_dir), make_splits(), fast_config(), tmp_path, progress=False)
    assert not (tmp_path / "run.json").exists()


def test_a_max_length_that_leaves_nothing_to_learn_is_an_error_and_leaves_no_run(tiny_model_dir, tmp_path):
    """TRL drops every example whose prompt fills max_length; the run stops with one error before any step, and
    the corrected command may use the same folder."""
    from codetune.train import train

    out = tmp_path / "run"
    with pytest.raises(
        CodetuneError, match=r"train.max_length: 16 tokens leave no example of the train split"
    ):
        train(str(tiny_model_dir), make_splits(), fast_config(max_length=16), out, progress=False)
    assert not out.exists()
    result = train(str(tiny_model_dir), make_splits(), fast_config(max_steps=1), out, progress=False)
    assert result.final_step == 1


def test_missing_validation_split_is_an_error(tiny_model_dir, tmp_path: Path):
    from codetune.train import train

    splits = make_splits()
    del splits["valid"]
    with pytest.raises(CodetuneError, match="valid"):
        train(str(tiny_model_dir), splits, fast_config(), tmp_path, progress=False)


def test_a_folder_of_other_files_is_not_trained_into(tiny_model_dir, tmp_path: Path):
    from codetune.train import train

    (tmp_path / "config.yaml").write_text("# my notes\n")
    with pytest.raises(CodetuneError, match=r"holds files that are not a training run \(e.g. config.yaml\)"):
        train(str(tiny_model_dir), make_splits(), fast_config(), tmp_path, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]
    assert (tmp_path / "config.yaml").read_text() == "# my notes\n"
    with pytest.raises(CodetuneError, match="is a file"):
        train(str(tiny_model_dir), make_splits(), fast_config(), tmp_path / "config.yaml", progress=False)


def test_rslora_and_dora_reach_peft_and_train(tiny_model_dir, tmp_path: Path):
    """`lora.use_rslora` scales by alpha/sqrt(r); `lora.use_dora` adds a magnitude vector per adapted projection,
    trained with the rest (the lean LoRA path leaves DoRA layers to PEFT)."""
    from safetensors.torch import load_file

    from codetune.train import train
    from codetune.train.config import LoraConfig

    lora = LoraConfig(r=4, alpha=16, dropout=0.0, use_rslora=True, use_dora=True)
    result = train(str(tiny_model_dir), make_splits(), fast_config(lora=lora), tmp_path, progress=False)
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["use_rslora"] is True and config["use_dora"] is True
    weights = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    magnitudes = [k for k in weights if "lora_magnitude_vector" in k]
    assert len(magnitudes) == 2 * 7  # 2 layers x 7 projections
    assert result.log[-1]["train_loss"] < result.log[0]["train_loss"]
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())["train"]["lora"]
    assert saved["use_rslora"] is True and saved["use_dora"] is True
