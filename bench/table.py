#!/usr/bin/env python3
"""Prints bench/run.sh's results as markdown tables.

  table.py ROWS.tsv

Each row of ROWS.tsv is tab-separated:

  cmp  LABEL  JSON  A  B  TARGETS   one comparison: command A against command B,
                                    both in the hyperfine JSON file; ratio = A / B
  mem  LABEL  FILE  TARGETS         peak RSS: FILE holds one KiB figure a line

TARGETS is "-" or a comma list of ratio<X (wall-time ratio), abs<S (A's median
wall time in seconds) and mib<M (median peak RSS); a row whose targets hold
says "yes", else "NO".
"""
import json
import statistics
import sys


def check(targets, ratio=None, a=None, mib=None):
    if targets == "-":
        return "-", "-"
    ok, words = True, []
    for t in targets.split(","):
        key, val = t.split("<")
        val = float(val)
        have = {"ratio": ratio, "abs": a, "mib": mib}[key]
        words.append({"ratio": f"< {val:g}x", "abs": f"< {val * 1000:g} ms", "mib": f"< {val:g} MiB"}[key])
        ok = ok and have is not None and have < val
    return ", ".join(words), "yes" if ok else "**NO**"


def fmt_s(x):
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.3f} s"


def main():
    rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
    cmps = [r for r in rows if r[0] == "cmp"]
    mems = [r for r in rows if r[0] == "mem"]
    if cmps:
        print("| comparison | A | B | A median | B median | wall A/B | A cpu | B cpu | cpu A/B | target (wall) | met |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for _, label, path, a, b, targets in cmps:
            res = {r["command"]: r for r in json.load(open(path))["results"]}
            ra, rb = res[a], res[b]
            ca, cb = ra["user"] + ra["system"], rb["user"] + rb["system"]
            ratio = ra["median"] / rb["median"]
            tgt, met = check(targets, ratio=ratio, a=ra["median"])
            print(f"| {label} | `{a}` | `{b}` | {fmt_s(ra['median'])} | {fmt_s(rb['median'])} | "
                  f"{ratio:.2f}x | {fmt_s(ca)} | {fmt_s(cb)} | {ca / cb:.2f}x | {tgt} | {met} |")
        print()
        print("Wall: median of the runs; cpu: mean user+system time of the runs (hyperfine's figures).")
    if mems:
        print()
        print("| peak memory | median RSS | runs | target | met |")
        print("|---|---|---|---|---|")
        for _, label, path, targets in mems:
            # /usr/bin/time adds "Command exited with non-zero status N" lines
            try:
                kib = [float(x) for x in open(path).read().splitlines() if x.strip().isdigit()]
            except OSError:
                kib = []
            if not kib:
                print(f"| {label} | - | 0 | - | - |")
                continue
            mib = statistics.median(kib) / 1024
            tgt, met = check(targets, mib=mib)
            print(f"| {label} | {mib:.1f} MiB | {len(kib)} | {tgt} | {met} |")


if __name__ == "__main__":
    main()
