"""`codetune train CONFIG.yaml`: validation before any work, one-line errors, and a real (tiny) run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from codetune.cli.train_cmd import load_run_config, train_command
from codetune.errors import CodetuneError


def write_config(path: Path, model: str, out: Path | None = None, **train: object) -> Path:
    data = {
        "model": model,
        "data": {"dataset": "builtin:deep", "format": "study", "max_rows": 4},
        "train": {"micro_batch_size": 2, "effective_batch_size": 2, "max_length": 64, **train},
    }
    if out is not None:
        data["out"] = str(out)
    path.write_text(yaml.safe_dump(data))
    return path


def test_bad_key_is_a_one_line_error_with_exit_code_2(tiny_model_dir, tmp_path):
    cfg = write_config(tmp_path / "arm.yaml", str(tiny_model_dir), tmp_path / "run", lerning_rate=1e-4)
    proc = subprocess.run(
        [sys.executable, "-m", "codetune.cli", "train", str(cfg)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(cfg) in lines[0] and "train.lerning_rate" in lines[0] and "unknown key" in lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("overrides", "expect"),
    [
        (["train.micro_batch_size=0"], "train.micro_batch_size"),
        (["micro_batch_size=3"], "train.effective_batch_size"),  # bare keys mean train.KEY
        (["train.lr_scheduler=cosinus"], "train.lr_scheduler"),
        (["train.compile=on", "train.liger_kernel=on"], "train.compile and train.liger_kernel"),
        (["train.compile=fast"], "train.compile"),
        (["data.format=poem"], "data.format"),
        (["model=no-such-model"], "model"),
    ],
)
def test_invalid_settings_name_the_file_and_key(tiny_model_dir, tmp_path, overrides, expect):
    cfg = write_config(tmp_path / "arm.yaml", str(tiny_model_dir), tmp_path / "run")
    with pytest.raises(CodetuneError) as e:
        load_run_config(cfg, overrides)
    # a bad value that an override set is blamed on the override, anything else on the file
    source = str(e.value).split(": ")[0]
    assert source in (str(cfg), *(f"override {o!r}" for o in overrides)) and expect in str(e.value)
    if expect in ("train.micro_batch_size", "train.compile", "data.format", "model"):
        assert source == f"override {overrides[0]!r}"


def test_on_and_off_mean_the_words_not_yaml_booleans(tiny_model_dir, tmp_path):
    """YAML 1.1 reads on/off/yes/no/true/false as booleans; three-way switches take them as "on" and "off", in a file
    and in overrides alike."""
    cfg = write_config(tmp_path / "arm.yaml", str(tiny_model_dir), tmp_path / "run")
    text = cfg.read_text(encoding="utf-8").replace(
        "train:\n", "train:\n  liger_kernel: off\n  lean_lora: yes\n", 1
    )
    cfg.write_text(text, encoding="utf-8")
    loaded = load_run_config(cfg, ["train.compile=on", "train.gradient_checkpointing=false"]).train
    assert (loaded.liger_kernel, loaded.lean_lora) == ("off", "on")
    assert (loaded.compile, loaded.gradient_checkpointing, loaded.padding_free) == ("on", "off", "auto")


def test_missing_out_is_an_error(tiny_model_dir, tmp_path):
    cfg = write_config(tmp_path / "arm.yaml", str(tiny_model_dir))
    with pytest.raises(CodetuneError, match="out"):
        load_run_config(cfg, [])
    assert load_run_config(cfg, [], out=tmp_path / "r").out == str(tmp_path / "r")


def test_cli_trains_study_format_text_rows(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    cfg = write_config(tmp_path / "arm.yaml", str(tiny_model_dir), max_steps=1, eval_steps=1, save_steps=1)
    train_command(cfg, ["learning_rate=1e-3"], out=out, resume=False, model=None, no_progress=False)

    printed = capsys.readouterr().out
    assert "done:" in printed and "tok/s" in printed  # the progress bar's last frame
    log = json.loads((out / "log.json").read_text())
    assert [r["step"] for r in log] == [1] and log[0]["val_loss"] > 0 and log[0]["test_loss"] > 0
    assert f"val loss {log[0]['val_loss']:.4f}, test loss {log[0]['test_loss']:.4f}" in printed
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "complete" and info["data_fingerprints"]["data"]
    data_report = json.loads((out / "data_report.json").read_text())  # for the report's Training data section
    assert data_report["splits"]["train"]["rows"] == 4 and data_report["answer"] == "column 'solution'"
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["train"]["learning_rate"] == 1e-3 and saved["data"]["format"] == "study"
    assert saved["model"] == str(tiny_model_dir)
    # config.yaml re-creates the run: it validates as a train config as it stands.
    again = load_run_config(out / "config.yaml", [], out=tmp_path / "again")
    assert again.train.learning_rate == 1e-3 and again.data.max_rows == 4
