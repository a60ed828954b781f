"""Processes sharing state: several pulls of one catalog model at once, two evaluations into one folder at once."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from reliability_helpers import cli_env

PART_MB = 48

PULL = """
import json, sys, time
sys.path.insert(0, {site!r})
from codetune.models import assemble
from codetune.models.catalog import CatalogEntry
entry = CatalogEntry("fake", "org/fake", "fake.gguf", ("fakepart-1", "fakepart-2"), "0", {size}, {sha!r})
start = time.time()
path = assemble.pull(entry, quiet=True)
print(json.dumps({{"start": start, "end": time.time(), "inode": path.stat().st_ino}}))
"""


def fake_parts(tmp_path: Path) -> tuple[Path, int, str]:
    """Two importable part packages of PART_MB MiB each (like the PyPI ones); returns site dir, size, sha256."""
    site, h, size = tmp_path / "site", hashlib.sha256(), 0
    for i in (1, 2):
        data = (b"GGUF" if i == 1 else b"") + os.urandom(PART_MB << 20)
        pkg = site / f"fakepart_{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
        h.update(data)
        size += len(data)
    return site, size, h.hexdigest()


def test_simultaneous_pulls_of_one_model_share_one_verified_file(
    tmp_path: Path, figures: Counter, notes: list
) -> None:
    site, size, sha = fake_parts(tmp_path)
    script = PULL.format(site=str(site), size=size, sha=sha)
    env = {**cli_env(), "CODETUNE_HOME": str(tmp_path / "home")}
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(3)]  # fmt: skip
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    folder = tmp_path / "home" / "models" / "fake"
    gguf = folder / "fake.gguf"
    assert hashlib.sha256(gguf.read_bytes()).hexdigest() == sha
    assert len({r["inode"] for r in results}) == 1  # one assembly; the others found it ready, not rebuilt
    assert not [p.name for p in folder.iterdir() if p.name.endswith((".part", ".tmp")) or p.is_dir()]
    spans = sorted((r["start"], r["end"]) for r in results)
    overlapped = spans[1][0] < spans[0][1]
    assert overlapped, f"the pulls did not overlap: {spans}"
    figures["concurrent_ok"] += len(procs)
    notes.append(f"concurrent pulls: 3 processes, {size >> 20} MiB model, spans " + ", ".join(
        f"{b - spans[0][0]:.2f}-{e - spans[0][0]:.2f}s" for b, e in spans))  # fmt: skip


def test_two_evaluations_into_one_folder(
    tiny_model_dir: Path, tmp_path: Path, figures: Counter, notes: list
) -> None:
    """One waits for the other's lock or refuses with a one-line error; the folder ends complete and consistent."""
    out = tmp_path / "eval"
    args = ["eval", "--model", str(tiny_model_dir), "--problems", "builtin:quickstart", "--limit", "3",
            "--max-new-tokens", "8", "--batch-size", "1", "-o", "workers=1", "-o", "timeout=3",
            "--out", str(out), "--no-progress"]  # fmt: skip
    procs = [subprocess.Popen([sys.executable, "-m", "codetune.cli", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=cli_env()) for _ in range(2)]  # fmt: skip
    outcomes = []
    for proc in procs:
        _, err = proc.communicate(timeout=400)
        assert "Traceback" not in err, err[-3000:]
        if proc.returncode == 2:
            errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
            assert len(errors) == 1 and "locked by another codetune process" in errors[0], err[-1000:]
            outcomes.append("refused")
        else:
            assert proc.returncode == 0, err[-3000:]
            outcomes.append("ok")
    assert "ok" in outcomes
    records = [json.loads(x) for x in (out / "generations.jsonl").read_text().splitlines()]
    keys = [(r["question_id"], r["sample"]) for r in records]
    assert len(keys) == len(set(keys)) == 3  # nothing generated twice, nothing lost
    summary = json.loads((out / "summary.json").read_text())
    rows = json.loads((out / "eval_all.json").read_text())
    assert summary["total"] == len(rows) == 3
    assert [g["question_id"] for g in json.loads((out / "generations.json").read_text())] == [
        r["question_id"] for r in rows
    ]
    figures["concurrent_ok"] += outcomes.count("ok")
    notes.append(f"concurrent evaluations into one folder: {' + '.join(outcomes)}")
