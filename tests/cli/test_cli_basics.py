"""The CLI shell: version, help, one-line errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys

from codetune import __version__


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codetune.cli", *args], capture_output=True, text=True)


def grade_args(generations, out) -> list[str]:
    return ["grade", "--problems", "builtin:quickstart", "--generations", str(generations), "--out", str(out)]


def test_version_and_help() -> None:
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"codetune {__version__}"
    r = run("--help")
    assert r.returncode == 0 and "model" in r.stdout


def test_unknown_model_is_one_line_error() -> None:
    r = run("model", "info", "./nope-not-a-model")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "nope-not-a-model" in lines[0]


def test_pull_unknown_catalog_name() -> None:
    r = run("model", "pull", "llama-99b")
    assert r.returncode == 2 and "unknown catalog model 'llama-99b'" in r.stderr


def test_info_of_folder(tiny_model_dir) -> None:
    r = run("model", "info", str(tiny_model_dir), "--json")
    assert r.returncode == 0, r.stderr
    assert '"architecture": "qwen2"' in r.stdout and '"chat_template": true' in r.stdout
    import json

    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert loaded.config.tie_word_embeddings  # the count below must not include the shared matrix twice
    assert json.loads(r.stdout)["parameters"] == sum(p.numel() for p in loaded.parameters())


def test_usage_errors_are_one_line_naming_the_command() -> None:
    for args, command, message in (
        (("train", "--bogus"), "codetune train", "No such option: --bogus"),
        (("--debug", "eval", "--model"), "codetune eval", "Option '--model' requires an argument"),
        (("data", "inspect"), "codetune data inspect", "Missing argument"),
        (("eval", "--n", "two"), "codetune eval", "'--n'"),
        (("bogus",), "codetune", "No such command 'bogus'"),
        (
            ("grade", "--timeout", "inf"),
            "codetune grade",
            "less than or equal to 3600",
        ),  # once a worker crash
    ):
        r = run(*args)
        assert r.returncode == 2 and r.stdout == "", r.stderr
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {command}: "), r.stderr
        assert message in lines[0] and f"'{command} --help'" in lines[0], r.stderr


def test_no_arguments_prints_the_help() -> None:
    r = run("data")
    assert r.returncode == 2 and "inspect" in r.stdout + r.stderr and "error:" not in r.stderr


def test_a_model_folder_with_an_invalid_config_is_a_one_line_error(tiny_model_dir, tmp_path) -> None:
    import json
    import shutil

    bad = tmp_path / "bad-model"
    shutil.copytree(tiny_model_dir, bad)
    config = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 1}))  # layer_types has 2
    for args in (("model", "info", str(bad)), ("eval", "--model", str(bad), "--problems", "builtin:quickstart",
                                               "--limit", "1", "--out", str(tmp_path / "eval"))):  # fmt: skip
        r = run(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
        errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and str(bad) in errors[0] and "num_hidden_layers" in errors[0], r.stderr[
            -2000:
        ]


def test_an_out_path_that_is_a_file_is_a_one_line_error(tmp_path) -> None:
    taken = tmp_path / "notes.txt"
    taken.write_text("keep me\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "log.json").write_text('[{"step": 2, "train_loss": 1.0}]')
    for args in (
        (
            "eval",
            "--model",
            "qwen2.5-coder-0.5b-instruct",
            "--problems",
            "builtin:quickstart",
            "--out",
            str(taken),
        ),
        ("report", str(tmp_path / "run"), "--out", str(taken)),
        ("report", str(tmp_path / "run"), "--out", str(taken / "sub")),
        ("run", "--out", str(taken)),
    ):
        r = run(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr[-2000:])
        assert r.stderr.startswith(f"error: {taken}") and len(r.stderr.splitlines()) == 1, (args, r.stderr)
    assert taken.read_text() == "keep me\n"


def test_an_output_that_names_an_input_is_refused(tmp_path) -> None:
    from pathlib import Path

    problems = tmp_path / "problems.jsonl"
    shipped = (
        Path(__file__).resolve().parents[2] / "src" / "codetune" / "bench" / "builtin" / "quickstart.jsonl"
    )
    problems.write_bytes(shipped.read_bytes())
    gens = tmp_path / "g.json"
    gens.write_text('[{"question_id": "qs_lamp_toggles", "code_list": ["print(3)"]}]')
    log = tmp_path / "log.json"
    log.write_text('[{"step": 2, "train_loss": 1.0}]')
    before = {f: f.read_bytes() for f in (problems, gens, log)}
    for args, option in (
        (("grade", "--problems", str(problems), "--generations", str(gens), "--out", str(problems)), "--out"),
        (("grade", "--problems", str(problems), "--generations", str(gens), "--out", str(gens)), "--out"),
        (
            ("data", "check", "builtin:deep", "--problems", str(problems), "--drop-out", str(problems)),
            "--drop-out",
        ),
        (("plot", str(log), "--out", str(log)), "--out"),
    ):
        r = run(*args)
        assert r.returncode == 2, (args, r.stderr[-2000:])
        assert r.stderr.startswith(f"error: {option} ") and "is also an input" in r.stderr, (args, r.stderr)
    assert {f: f.read_bytes() for f in before} == before


def test_empty_inputs_are_errors_not_zero_results(tmp_path) -> None:
    gens, log = tmp_path / "g.json", tmp_path / "log.json"
    log.write_text("[]")
    for content, message in (
        ("[]", "no generations"),
        ('[{"question_id": "q", "code_list": []}]', "non-empty"),
    ):
        gens.write_text(content)
        r = run(*grade_args(gens, tmp_path / "o.json"))
        assert r.returncode == 2 and r.stderr.startswith(f"error: {gens}") and message in r.stderr, r.stderr
    r = run("plot", str(log), "--out", str(tmp_path / "o.png"))
    assert r.returncode == 2 and r.stderr.startswith(f"error: {log}: no logged steps"), r.stderr
    assert not (tmp_path / "o.json").exists() and not (tmp_path / "o.png").exists()


def test_a_broken_local_model_folder_is_not_blamed_on_the_hub_cache(tiny_model_dir, tmp_path) -> None:
    import os
    import shutil

    bad = tmp_path / "bad-model"
    shutil.copytree(tiny_model_dir, bad)
    (bad / "config.json").write_text('{"model_type": "qwen2", ')
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "codetune.cli", "model", "info", str(bad)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr[-2000:]
    assert "not a valid JSON file" in r.stderr and "check the files in that folder" in r.stderr, r.stderr
    assert "Hugging Face cache" not in r.stderr


def test_a_folder_where_a_file_is_needed_is_named_as_such(tmp_path) -> None:
    folder, file = tmp_path / "adir", tmp_path / "afile.json"
    folder.mkdir()
    file.write_text("[]")
    gens = tmp_path / "g.json"
    gens.write_text('[{"question_id": "q", "code_list": ["print(1)"]}]')
    for args, message in (
        (("data", "inspect", str(folder)), f"{folder}: is a folder, not a file"),
        (("train", str(folder)), f"{folder}: is a folder, not a config file"),
        (
            (
                "grade",
                "--problems",
                str(folder),
                "--generations",
                str(gens),
                "--out",
                str(tmp_path / "o.json"),
            ),
            f"{folder}: is a folder, not a problem file",
        ),
        (("report", str(file), "--out", str(tmp_path / "r")), f"{file}: is a file, not a run folder"),
        (("plot", str(folder), "--out", str(tmp_path / "p.png")), f"{folder}: is a folder, not a file"),
    ):
        r = run(*args)
        assert r.returncode == 2 and r.stderr.startswith(f"error: {message}"), (args, r.stderr)


def test_every_option_and_argument_has_help() -> None:
    import typer

    from codetune.cli import app

    missing = []

    def walk(command, path: str) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")
        missing.extend(
            f"{path} {p.name}" for p in command.params if p.name != "help" and not getattr(p, "help", "")
        )

    walk(typer.main.get_command(app), "codetune")
    assert missing == []


def test_an_out_under_a_file_is_refused_before_the_model_loads(tmp_path, tiny_model_dir) -> None:
    """The --out error comes first, before any long work (a model that does not exist would fail on loading)."""
    taken = tmp_path / "notes.txt"
    taken.write_text("keep me\n")
    config = tmp_path / "t.yaml"
    config.write_text(
        f"model: {tiny_model_dir}\ndata: {{dataset: 'builtin:deep'}}\ntrain: {{max_steps: 1}}\n"
    )
    for args in (
        ("compare", "--model", "./no-such-model", "--out", str(taken)),
        ("compare", "--model", "./no-such-model", "--out", str(taken / "sub")),
        ("train", str(config), "--out", str(taken / "run")),
    ):
        r = run(*args)
        assert r.returncode == 2 and r.stderr.startswith(f"error: --out {taken}"), r.stderr
        assert "is a file where a folder is needed" in r.stderr and len(r.stderr.splitlines()) == 1
    assert taken.read_text() == "keep me\n"


def test_sweep_options_without_a_run_are_refused() -> None:
    for option in (("--every", "2"), ("--no-base",)):
        r = run("eval", "--model", "m", "--problems", "builtin:quickstart", "--out", "/tmp/x", *option)
        assert (
            r.returncode == 2
            and r.stderr == f"error: {option[0]}: only applies with --run (a sweep of a run)\n"
        )


def test_an_error_quoting_brackets_is_printed_as_written() -> None:
    """The message quotes the user's input; rich must not read `[/b]` in it as markup (it raised MarkupError)."""
    r = run("data", "inspect", "/nonexistent/[/b]x[bold].jsonl")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: /nonexistent/[/b]x[bold].jsonl: file not found"), r.stderr
    r = run("bogus[/b]")  # a usage error quoting it
    assert r.returncode == 2 and r.stderr.startswith("error: codetune: No such command 'bogus[/b]'"), r.stderr


def test_a_release_with_a_local_problem_set_is_refused_not_ignored(tmp_path) -> None:
    gens = tmp_path / "g.json"
    gens.write_text('[{"question_id": "qs_lamp_toggles", "code_list": ["print(3)"]}]')
    for args in (
        ("grade", "--problems", "builtin:quickstart", "--generations", str(gens), "--out", str(tmp_path / "o.json")),
        ("eval", "--model", "qwen2.5-coder-0.5b-instruct", "--problems", "builtin:quickstart", "--out",
         str(tmp_path / "eval")),
        ("data", "check", "builtin:deep", "--problems", "builtin:quickstart"),
    ):  # fmt: skip
        r = run(*args, "--release", "v2")
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, (args, r.stderr[-2000:])
        assert r.stderr.startswith("error: --release v2: applies to hub problems only"), (args, r.stderr)
    assert not (tmp_path / "o.json").exists() and not (tmp_path / "eval").exists()


def test_ctrl_c_exits_130_and_says_how_to_resume(tmp_path) -> None:
    """typer returns a KeyboardInterrupt as exit code 130 instead of raising it: it was exit 0, and silent."""
    import signal
    import time

    gens = tmp_path / "g.json"
    gens.write_text('[{"question_id": "qs_lamp_toggles", "code_list": ["import time\\ntime.sleep(60)"]}]')
    args = grade_args(gens, tmp_path / "o.json")
    p = subprocess.Popen(
        [sys.executable, "-m", "codetune.cli", *args, "--timeout", "60", "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a background shell ignores Ctrl-C
    )
    time.sleep(8)  # the sandbox is running the sleeping program
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err[-2000:]
    assert "interrupted: finished work is saved; run the same command again to resume" in err
    assert not (tmp_path / "o.json").exists()


def test_model_list_shows_whole_names_in_80_columns() -> None:
    import os

    from codetune.models.catalog import CATALOG

    r = subprocess.run([sys.executable, "-m", "codetune.cli", "model", "list"], capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "80"})  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert all(line.count("│") == 5 or not line.startswith("│") for line in r.stdout.splitlines())
    for name in CATALOG:
        assert f"│ {name} " in r.stdout, r.stdout
