"""Instruction data: loading, column mapping, chat formatting, grouped splits, inspection, contamination."""
