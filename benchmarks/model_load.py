"""Time the first (cold: convert GGUF, cache a dequantized copy) and second (cached) load of catalog models.

Prints JSON. The first load is measured only when the converted copy is absent (use --fresh to delete it first).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys

CHILD = """
import time, json, sys
t = time.perf_counter()
from codetune.models.load import load_model
model, tok = load_model(sys.argv[1], quiet=True)
print(json.dumps({"seconds": time.perf_counter() - t, "params": sum(p.numel() for p in model.parameters())}))
"""


def timed_load(spec: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, spec], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "models", nargs="*", default=["qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"]
    )
    ap.add_argument(
        "--fresh", action="store_true", help="Delete the converted copy first, so the first load is cold."
    )
    args = ap.parse_args()
    from codetune.models.assemble import pull
    from codetune.models.catalog import get_entry
    from codetune.models.load import converted_dir

    results = []
    for name in args.models:
        gguf = pull(get_entry(name), quiet=True)
        if args.fresh:
            shutil.rmtree(converted_dir(gguf), ignore_errors=True)
        first = timed_load(name)
        second = timed_load(name)
        results.append(
            {
                "model": name,
                "first_load_s": round(first["seconds"], 1),
                "second_load_s": round(second["seconds"], 1),
                "params": first["params"],
                "speedup": round(first["seconds"] / second["seconds"], 1),
            }
        )
    print(json.dumps({"machine": "2-core CPU", "results": results}, indent=2))


if __name__ == "__main__":
    main()
