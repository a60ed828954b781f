"""The hostile corpus (tests/reliability/hostile/*.py) graded in parallel, round after round, through `grade_all`.

Every program must get an acceptable verdict (its header says which), the harness's memory must stay bounded, no
process may survive, nothing outside the sandbox may change (canaries in $HOME and /tmp, a TCP and a UDP listener).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from codetune.bench import grade
from codetune.bench.grade import grade_all
from codetune.bench.problems import Problem, Test
from codetune.bench.sandbox import Sandbox, isolation_report

CORPUS = Path(__file__).resolve().parent / "hostile"
VERDICTS = {"accepted", "wrong_answer", "time_limit", "memory_limit", "runtime_error"}
ROUNDS, WORKERS, TIMEOUT, MEMORY_MB = 3, 4, 2.0, 512
RSS_GROWTH_LIMIT = 300 << 20  # peak harness RSS over its baseline, while 4 sandboxes flood their output caps
RSS_LEAK_LIMIT = 160 << 20  # harness RSS over its baseline after each round


@dataclass(frozen=True)
class Program:
    name: str
    what: str
    verdicts: frozenset[str]
    needs: tuple[str, ...]
    code: str


def load_corpus() -> list[Program]:
    programs = []
    for path in sorted(CORPUS.glob("*.py")):
        code = path.read_text()
        head = dict(re.findall(r"^# (hostile|verdict|needs): (.*)$", code, flags=re.M))
        needs = tuple(n.strip() for n in head.get("needs", "").split("(")[0].split(",") if n.strip())
        verdicts = frozenset(v.strip() for v in head.get("verdict", "").split("|") if v.strip())
        programs.append(Program(path.stem, head.get("hostile", ""), verdicts, needs, code))
    return programs


class RecordingSandbox(Sandbox):
    """A Sandbox that remembers the uid its programs ran as, to look for their processes afterwards."""

    uids: set[int] = set()

    def __init__(self) -> None:
        super().__init__()
        if self.isolation.get("uid") is not None:
            RecordingSandbox.uids.add(self.isolation["uid"])


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def arena():
    """Canaries the programs attack, and listeners they try to reach; removed afterwards."""
    tag = uuid.uuid4().hex[:12]
    home, tmp = Path.home(), Path("/tmp")
    ctx = {
        "home_canary": str(home / f".codetune-canary-{tag}"),
        "tmp_canary": str(tmp / f"codetune-canary-{tag}"),
        "secret_file": str(home / f".codetune-secret-{tag}"),
        "home_new": str(home / f".codetune-pwned-{tag}"),
        "tmp_new": str(tmp / f"codetune-pwned-{tag}"),
        "cwd_new": str(Path.cwd() / f"codetune-pwned-{tag}"),
        "harness_pid": os.getpid(),
    }
    for key in ("home_canary", "tmp_canary", "secret_file"):
        Path(ctx[key]).write_text(f"{key} {tag}\n")
    for key in ("home_canary", "tmp_canary"):  # world-writable: only the sandbox's own barriers protect them
        os.chmod(ctx[key], 0o666)
    os.chmod(ctx["secret_file"], 0o600)
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(16)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    ctx |= {"port": tcp.getsockname()[1], "udp_port": udp.getsockname()[1]}
    hashes = {k: sha(Path(ctx[k])) for k in ("home_canary", "tmp_canary", "secret_file")}
    extra = [
        Path("/var/tmp/codetune-pwned"),
        Path("/dev/shm/codetune-pwned"),
        Path("~root/.codetune-pwned").expanduser(),
    ]
    preexisting = {p for p in extra if p.exists()}
    yield {
        "ctx": ctx,
        "hashes": hashes,
        "tcp": tcp,
        "udp": udp,
        "extra": [p for p in extra if p not in preexisting],
    }
    tcp.close()
    udp.close()
    for key in ("home_canary", "tmp_canary", "secret_file", "home_new", "tmp_new", "cwd_new"):
        Path(ctx[key]).unlink(missing_ok=True)


@pytest.fixture(scope="module")
def campaign(arena, figures, notes):
    report = isolation_report()
    corpus = load_corpus()
    runnable = [p for p in corpus if all(report.get(n) for n in p.needs)]
    skipped = [p.name for p in corpus if p not in runnable]
    stdin = json.dumps(arena["ctx"]) + "\n"
    problems = [
        Problem(
            p.name, p.name, p.what, "hostile", "", "", "", "easy", (Test(stdin, "contained\n", "stdin"),), ()
        )
        for p in runnable
    ]
    generations = {p.name: [p.code] for p in runnable}
    me = psutil.Process()
    before = {c.pid for c in me.children(recursive=True)}
    baseline = me.memory_info().rss
    peak, stop = [baseline], threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            peak[0] = max(peak[0], me.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    mp = pytest.MonkeyPatch()
    mp.setattr(grade, "Sandbox", RecordingSandbox)
    rounds, after, started = [], [], time.monotonic()
    try:
        for _ in range(ROUNDS):
            rows = grade_all(
                problems, generations, timeout=TIMEOUT, memory_mb=MEMORY_MB, workers=WORKERS, progress=False
            )
            rounds.append({r["question_id"]: r["metadata"][0]["verdicts"] for r in rows})
            after.append(me.memory_info().rss)
    finally:
        mp.undo()
        stop.set()
        sampler.join()
    elapsed = time.monotonic() - started
    figures["hostile_programs"] = len(runnable)
    figures["hostile_rounds"] = ROUNDS
    mb = lambda n: f"{n / 2**20:.0f} MB"  # noqa: E731
    notes.append(
        f"hostile corpus: {len(runnable)} of {len(corpus)} programs x {ROUNDS} rounds, {WORKERS} parallel "
        f"sandboxes, {elapsed:.1f} s; harness RSS {mb(baseline)} -> peak {mb(peak[0])}, after each round "
        f"{', '.join(mb(a) for a in after)}; skipped for lack of isolation: {', '.join(skipped) or 'none'}"
    )
    notes.append("sandbox isolation here: " + ", ".join(f"{k}={report.get(k)}" for k in
                                                          ("uid", "network_isolated", "private_tmp", "fs_protected", "processes_hidden")))  # fmt: skip
    return {"programs": {p.name: p for p in runnable}, "rounds": rounds, "before": before, "baseline": baseline,
            "peak": peak[0], "after": after, "report": report}  # fmt: skip


def test_corpus_is_large_and_every_program_says_what_it_does() -> None:
    corpus = load_corpus()
    assert len(corpus) >= 30
    for p in corpus:
        assert p.what and p.verdicts and p.verdicts <= VERDICTS, p.name
        assert set(p.needs) <= {"uid", "fs_protected", "network_isolated", "processes_hidden"}, p.name


def test_every_program_gets_an_acceptable_verdict_every_round(campaign: dict, figures: Counter) -> None:
    wrong = []
    for i, verdicts in enumerate(campaign["rounds"]):
        assert set(verdicts) == set(campaign["programs"]), f"round {i}: programs without a row"
        for name, v in verdicts.items():
            figures["programs_run"] += 1
            got = v[0]["verdict"] if v else None
            if got in campaign["programs"][name].verdicts:
                figures["programs_contained"] += 1
            else:
                wrong.append(f"round {i} {name}: {got} (allowed {sorted(campaign['programs'][name].verdicts)}), "
                             f"got {v[0]['got']!r} stderr {v[0]['stderr'][-200:]!r}")  # fmt: skip
    assert not wrong, "\n".join(wrong)


def test_nothing_outside_the_sandbox_changes(campaign: dict, arena: dict) -> None:
    ctx, rep = arena["ctx"], campaign["report"]
    if rep.get("uid") is not None:  # the harness's home, cwd and secrets are out of reach of another uid
        assert sha(Path(ctx["home_canary"])) == arena["hashes"]["home_canary"]
        assert sha(Path(ctx["secret_file"])) == arena["hashes"]["secret_file"]
        assert not Path(ctx["home_new"]).exists() and not Path(ctx["cwd_new"]).exists()
    if rep.get("fs_protected"):  # /tmp, /var/tmp, /dev/shm are private: nothing lands in the real ones
        assert sha(Path(ctx["tmp_canary"])) == arena["hashes"]["tmp_canary"]
        assert not Path(ctx["tmp_new"]).exists()
        assert not [p for p in arena["extra"] if p.exists()]
    if rep.get("network_isolated"):
        arena["tcp"].setblocking(False)
        arena["udp"].setblocking(False)
        with pytest.raises(BlockingIOError):
            arena["tcp"].accept()
        with pytest.raises(BlockingIOError):
            arena["udp"].recv(64)


def test_no_stray_process_survives(campaign: dict) -> None:
    mine = {c.pid for c in psutil.Process().children(recursive=True)} - campaign["before"]
    assert not mine, [psutil.Process(p).cmdline() for p in mine if psutil.pid_exists(p)]
    strays = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            uid = int(re.search(r"^Uid:\s+(\d+)", status, flags=re.M).group(1))
            if uid in RecordingSandbox.uids:
                strays.append(entry)
    assert not strays


def test_harness_memory_stays_bounded(campaign: dict) -> None:
    assert campaign["peak"] - campaign["baseline"] < RSS_GROWTH_LIMIT
    # No leak: a round that kept its programs' captured output (two 32 MB floods) would add ~64 MB each time.
    assert max(campaign["after"]) - campaign["baseline"] < RSS_LEAK_LIMIT
