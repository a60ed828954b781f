"""Fuzzed experiment YAML, generation files for `codetune grade`, torn logs, and fuzzed files through the real CLI."""

from __future__ import annotations

import base64
import json
import random
import subprocess
import sys
import tempfile
import zlib
from collections import Counter
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st
from reliability_helpers import FUZZ, assert_one_line_error, attempt, cli_env, json_values, mutated, paths_of

from codetune.bench.evaluate import _repair_torn_tail, load_generations
from codetune.cli.grade_cmd import _read_generations
from codetune.files import append_jsonl, read_jsonl
from codetune.run.config import QUICKSTART, Experiment, load_experiment

BASE = yaml.safe_load(QUICKSTART.read_text())
REDUCE_NONE = base64.b64encode(zlib.compress(b"N)R.")).decode()  # REDUCE with None as the callable


@st.composite
def experiment_doc(draw: st.DrawFn) -> dict:
    """The shipped quickstart with 1-3 edits: a key deleted, a value replaced by any YAML value, an unknown key."""
    doc = json.loads(json.dumps(BASE))
    for _ in range(draw(st.integers(1, 3))):
        paths = paths_of(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        op = draw(st.sampled_from(["delete", "replace", "extra"]))
        if op == "delete":
            del parent[path[-1]]
        elif op == "replace":
            parent[path[-1]] = draw(
                json_values | st.sampled_from(["builtin:nope", "x.jsonl", "2024-13", -1, 0, 1e308])
            )
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
    return doc


@FUZZ
@given(doc=experiment_doc())
def test_edited_experiment_files(doc: dict, figures: Counter) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "exp.yaml"
        path.write_text(yaml.safe_dump(doc))
        outcome, got = attempt(lambda: load_experiment(path), figures)
    if outcome == "ok":
        assert isinstance(got, Experiment) and [a.name for a in got.arms] == [a["name"] for a in doc["arms"]]
    else:
        assert str(path) in got


@FUZZ
@given(data=st.data())
def test_corrupted_experiment_bytes(data: st.DataObject, figures: Counter) -> None:
    blob = data.draw(mutated(QUICKSTART.read_bytes(), max_edits=6))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "exp.yaml"
        path.write_bytes(blob)
        outcome, got = attempt(lambda: load_experiment(path), figures)
    assert outcome == "ok" or str(path) in got


override_st = st.lists(
    st.text(max_size=25)
    | st.builds(lambda k, v: f"{k}={v}", st.sampled_from([p for p in map(".".join, (tuple(map(str, p)) for p in paths_of(BASE)))] + ["train", "a.b.c", ""]), st.text(max_size=12)),
    max_size=4,
)  # fmt: skip


@FUZZ
@given(overrides=override_st)
def test_fuzzed_overrides(overrides: list[str], figures: Counter) -> None:
    outcome, got = attempt(lambda: load_experiment(None, overrides), figures)
    assert outcome == "error" or isinstance(got, Experiment)


gen_entry = st.fixed_dictionaries(
    {"question_id": st.sampled_from(["a", "b", "c"]) | json_values, "code_list": st.lists(st.text(max_size=10), max_size=3) | json_values},
    optional={"output_list": json_values},
)  # fmt: skip


@FUZZ
@given(doc=st.lists(gen_entry, max_size=4) | json_values)
def test_generation_files_for_grade(doc: object, figures: Counter) -> None:
    valid = isinstance(doc, list) and bool(doc) and all(
        isinstance(e, dict) and isinstance(e.get("question_id"), str)
        and isinstance(e.get("code_list"), list) and bool(e["code_list"])
        and all(isinstance(c, str) for c in e["code_list"])
        for e in doc
    ) and len({e["question_id"] for e in doc}) == len(doc)  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "generations.json"
        path.write_text(json.dumps(doc))
        outcome, got = attempt(lambda: _read_generations(path), figures)
    assert (outcome == "ok") == valid, got
    if valid:
        assert got == {e["question_id"]: e["code_list"] for e in doc}


@FUZZ
@given(records=st.lists(st.dictionaries(st.text(max_size=5), json_values, max_size=3), max_size=5),
       torn=st.dictionaries(st.text(min_size=1, max_size=5), st.text(min_size=1), min_size=1), cut=st.floats(0, 0.999))  # fmt: skip
def test_append_only_log_survives_a_torn_last_line(
    records: list, torn: dict, cut: float, figures: Counter
) -> None:
    """A kill during `append_jsonl` leaves a prefix of one line: readers skip it, the next append repairs it."""
    figures["inputs_tried"] += 1
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "generations.jsonl"
        for r in records:
            append_jsonl(path, r)
        line = (json.dumps(torn, ensure_ascii=False) + "\n").encode()
        with open(path, "ab") as f:
            f.write(line[: max(1, int(len(line) * cut))] if cut else line[:1])
        assert read_jsonl(path, tolerate_torn_tail=True) == records
        _repair_torn_tail(path)
        append_jsonl(path, {"question_id": "q", "sample": 0, "output": "o"})
        assert read_jsonl(path) == [*records, {"question_id": "q", "sample": 0, "output": "o"}]
        assert set(load_generations(path, {"q"}, 1)) == {("q", 0)}


MENTIONS = {"deep-generations": "deep.json: unreadable JSON", "reduce-pickle": ":1: field 'private_test_cases'",
            "deep-yaml": "deep.yaml: invalid YAML", "bigint-data": "big.jsonl:1: invalid JSON",
            "bad-problems-eval": "bad.jsonl:1: ", "out-is-a-directory": "out-is-a-dir: is a folder"}  # fmt: skip


def test_fuzzed_files_through_the_cli(tmp_path: Path, figures: Counter) -> None:
    """Exit 2 and a single `error:` line (no traceback), and no output presented as complete."""
    w = lambda name, data: (tmp_path / name).write_bytes(data) and str(tmp_path / name)  # noqa: E731
    good_gens = json.dumps([{"question_id": "qs_lamp_toggles", "code_list": ["print(0)"]}]).encode()
    g = w("g.json", good_gens)
    outdir = tmp_path / "out-is-a-dir"
    outdir.mkdir()
    row = json.loads(Path(_problems_file()).read_text().splitlines()[0])
    cases = {
        "deep-generations": ["grade", "--problems", "builtin:quickstart", "--generations",
                             w("deep.json", b"[" * 100_000 + b"]" * 100_000), "--out", str(tmp_path / "o1.json")],
        "reduce-pickle": ["grade", "--problems", w("p.jsonl", json.dumps({**row, "private_test_cases": REDUCE_NONE}).encode() + b"\n"),
                          "--generations", g, "--out", str(tmp_path / "o2.json")],
        "deep-yaml": ["run", "--dry-run", w("deep.yaml", b"[" * 5000 + b"]" * 5000)],
        "bigint-data": ["data", "check", w("big.jsonl", b'{"input": ' + b"9" * 9000 + b"}\n"), "--problems", "builtin:quickstart"],
        "bad-problems-eval": ["eval", "--model", "nope", "--problems", w("bad.jsonl", b'{"question_id": 1}\n'),
                              "--out", str(tmp_path / "eval-never")],
        "out-is-a-directory": ["grade", "--problems", "builtin:quickstart", "--generations", g, "--out", str(outdir)],
    }  # fmt: skip
    rng = random.Random(7)
    for i in range(4):  # seeded random byte edits of a valid generations file
        blob = bytearray(good_gens)
        for _ in range(3):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        cases[f"random-{i}"] = ["grade", "--problems", "builtin:quickstart", "--generations", w(f"r{i}.json", bytes(blob)),
                                "--out", str(tmp_path / f"r{i}-out.json"), "--timeout", "2", "--workers", "1"]  # fmt: skip
    procs = {
        name: subprocess.Popen([sys.executable, "-m", "codetune.cli", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=cli_env())
        for name, args in cases.items()
    }  # fmt: skip
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=240)
        done = subprocess.CompletedProcess(cases[name], proc.returncode, out, err)
        figures["inputs_tried"] += 1
        target = Path(cases[name][cases[name].index("--out") + 1]) if "--out" in cases[name] else None
        if name.startswith("random-") and proc.returncode == 0:
            assert isinstance(json.loads(target.read_text()), list)  # complete, parsable output
            figures["inputs_ok"] += 1
            continue
        assert_one_line_error(done, mentions=MENTIONS.get(name, f"r{name[-1]}.json"))
        figures["clean_errors"] += 1
        if target is not None and target != outdir:
            assert not target.exists(), name  # nothing written that could pass for a result
    assert list(outdir.iterdir()) == [] and not list(tmp_path.glob(".*.tmp"))


def _problems_file() -> str:
    from codetune.bench.problems import BUILTIN_DIR

    return str(BUILTIN_DIR / "quickstart.jsonl")
