"""report.html in headless Chromium: it renders, and its table and every image load from data: URIs."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from report_fixtures import PROBLEMS

from codetune.report import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/test.sh installs it)"
)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chrome-profile'}",
        "--window-size=1280,2000",
    ]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


def test_report_renders_in_chromium(fixture_runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report"
    html = build_report(
        [fixture_runs["deep"], fixture_runs["diverse"]], out, base=fixture_runs["base"], title="Browser check"
    )
    assert html == out / "report.html"
    url = html.resolve().as_uri()

    shot = tmp_path / "shot.png"
    r = chromium(tmp_path, f"--screenshot={shot}", url)
    assert shot.is_file(), r.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000

    dom = chromium(tmp_path, "--dump-dom", url).stdout
    assert "<table>" in dom and "Browser check" in dom
    assert all(q in dom for q in PROBLEMS)
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', dom)
    assert len(srcs) == 6
    for src in srcs:
        head, b64 = src.split(",", 1)
        assert head == "data:image/png;base64" and base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(?:src|href)="(?!data:)[^"#]', dom)
