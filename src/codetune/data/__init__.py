"""Instruction data: loading, column mapping, chat formatting, grouped splits, inspection, contamination."""

from codetune.data.build import SplitSet, build_splits, inspect, read_statements
from codetune.data.contamination import find_matches, read_problems
from codetune.data.load import load_rows

__all__ = [
    "SplitSet",
    "build_splits",
    "find_matches",
    "inspect",
    "load_rows",
    "read_problems",
    "read_statements",
]
