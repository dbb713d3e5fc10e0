#!/usr/bin/env python3
"""Reads benchmark JSON lines and prints every figure that has a target,
with whether it meets it. Exit status 0 either way: targets are goals to
report, and noisy machines are judged by a person reading the table."""
import json
import operator
import re
import sys

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


def meets(value, target):
    m = re.fullmatch(r"\s*(>=|<=|>|<)\s*([0-9.eE+-]+)\s*", target or "")
    if not m:
        return "?"
    return "yes" if OPS[m.group(1)](value, float(m.group(2))) else "NO"


def main(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if "target" not in r:
                continue
            figure = r.get("ratio", r.get("value"))
            kind = "ratio" if "ratio" in r else r.get("unit", "")
            threads = f" ({r['threads']} thr)" if r.get("threads") else ""
            rows.append((r["bench"], r["case"] + threads, f"{figure:.4g}", kind, r["target"],
                         meets(figure, r["target"]), r.get("vs", "")))
    header = ("bench", "case", "figure", "unit", "target", "met", "against")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print()
    print(fmt.format(*header))
    print(fmt.format(*("-" * w for w in widths)))
    for row in rows:
        print(fmt.format(*row))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/release/bench/results.jsonl")
