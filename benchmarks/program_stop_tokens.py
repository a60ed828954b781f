"""Tokens `bench.stop_at_program` saves, from answers generated without it, in one run.

Usage: python benchmarks/program_stop_tokens.py EVAL_FOLDER_OR_FILE... [--tokenizer SPEC]
Reads each eval folder's `generations.jsonl` (or `eval_all.json`, or a given file of either kind): every answer, as
generated in full, against the same answer ended at `extract.program_end`. Prints JSON: new tokens both ways, the
ratio, how many answers end early, and how many extract the same program (the study rule) both ways (all, or the
setting would change results).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from codetune.bench.extract import extract_study, program_end
from codetune.files import iter_jsonl, read_json
from codetune.models import load_tokenizer


def answers(path: Path) -> list[str]:
    if path.is_dir():
        path = next((path / n for n in ("generations.jsonl", "eval_all.json") if (path / n).is_file()), path)
    if path.suffix == ".jsonl":
        return [rec["output"] for rec in iter_jsonl(path)]
    return [o for row in read_json(path) for o in row["output_list"]]


def measure(texts: list[str], tokenizer: object) -> dict:
    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])  # type: ignore[operator]

    full = ended = early = same = 0
    for text in texts:
        end = program_end(text)
        cut = text if end is None else text[:end]
        full, ended = full + count(text), ended + count(cut)
        early += end is not None and end < len(text)
        same += extract_study(cut) == extract_study(text)
    return {
        "answers": len(texts),
        "tokens_full": full,
        "tokens_ended_at_program": ended,
        "ratio_full_over_ended": round(full / ended, 3) if ended else None,
        "saved_fraction": round(1 - ended / full, 3) if full else None,
        "answers_ending_early": early,
        "same_program": same,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument(
        "--tokenizer", default="qwen2.5-coder-1.5b-instruct", help="model spec whose tokenizer counts"
    )
    args = ap.parse_args()
    tokenizer = load_tokenizer(args.tokenizer)
    print(json.dumps({str(p): measure(answers(p), tokenizer) for p in args.paths}, indent=1))


if __name__ == "__main__":
    main()
