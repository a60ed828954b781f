"""Shared pieces of the reliability suite: figures gathered by the tests and printed in pytest's terminal summary."""

from __future__ import annotations

from collections import Counter

import pytest

# Filled by the tests of this folder (same process), printed once at the end of the session.
FIGURES: Counter = Counter()
NOTES: list[str] = []


@pytest.fixture(scope="session")
def figures() -> Counter:
    """Counters: inputs_tried, crashes_survived, programs_contained, ... (see pytest_terminal_summary)."""
    return FIGURES


@pytest.fixture(scope="session")
def notes() -> list[str]:
    """Free-form measured lines (RSS, timings) for the terminal summary."""
    return NOTES


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    if not FIGURES and not NOTES:
        return
    tr = terminalreporter
    tr.section("codetune reliability figures")
    tr.write_line(
        f"inputs tried: {FIGURES['inputs_tried']} (one-line errors: {FIGURES['clean_errors']}, "
        f"accepted: {FIGURES['inputs_ok']}); malicious pickles refused: {FIGURES['pickles_refused']}"
    )
    tr.write_line(
        f"crashes survived: {FIGURES['crashes_survived']} kill -9 (generation {FIGURES['kills_generation']}, "
        f"grading {FIGURES['kills_grading']}, training {FIGURES['kills_training']}); "
        f"concurrent runs without corruption: {FIGURES['concurrent_ok']}"
    )
    tr.write_line(
        f"programs contained: {FIGURES['programs_contained']} of {FIGURES['programs_run']} hostile runs "
        f"({FIGURES['hostile_programs']} programs x {FIGURES['hostile_rounds']} rounds)"
    )
    for line in NOTES:
        tr.write_line(line)
