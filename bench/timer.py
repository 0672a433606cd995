#!/usr/bin/env python3
"""A stand-in for the part of hyperfine that bench/run.sh uses, for hosts
without it:

  timer.py [--runs N] [--warmup W] [--prepare CMD] [-i] --export-json FILE
           [-n NAME] CMD [[-n NAME] CMD ...]

Each CMD (and --prepare, before every run) runs with `sh -c`, stdin and
stdout/stderr on /dev/null. Runs of the commands are interleaved (A B A B
...), so a change of load hits all of them alike. The JSON has hyperfine's
shape: results[].{command, mean, median, min, max, user, system, times,
exit_codes}, plus max_rss_kib (median of the runs' peak RSS). Without -i a
command that exits non-zero stops the timer with exit 1.
"""
import argparse
import json
import os
import statistics
import sys
import time


def spawn(cmd):
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        t0 = time.monotonic()
        pid = os.posix_spawn("/bin/sh", ["sh", "-c", cmd], os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0),
                                           (os.POSIX_SPAWN_DUP2, devnull, 1),
                                           (os.POSIX_SPAWN_DUP2, devnull, 2)])
    finally:
        os.close(devnull)
    _, status, ru = os.wait4(pid, 0)
    wall = time.monotonic() - t0
    return wall, ru, os.waitstatus_to_exitcode(status)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", "-r", type=int, default=10)
    ap.add_argument("--warmup", "-w", type=int, default=0)
    ap.add_argument("--prepare", "-p", default=None)
    ap.add_argument("--ignore-failure", "-i", action="store_true")
    ap.add_argument("--export-json", required=True)
    # The options come first; the commands, each perhaps with -n NAME
    # before it (which argparse would take for an option of its own), last.
    argv, with_value = sys.argv[1:], {"--runs", "-r", "--warmup", "-w", "--prepare", "-p", "--export-json"}
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] not in ("-n", "--command-name"):
        i += 2 if argv[i] in with_value else 1
    a = ap.parse_args(argv[:i])
    cmds, name, rest = [], None, argv[i:]
    while rest:
        x = rest.pop(0)
        if x in ("-n", "--command-name"):
            name = rest.pop(0)
        else:
            cmds.append((name or x, x))
            name = None
    if not cmds:
        ap.error("no command")
    runs = {c: [] for c, _ in cmds}
    for i in range(a.warmup + a.runs):
        for label, cmd in cmds:
            if a.prepare:
                _, _, rc = spawn(a.prepare)
                if rc != 0:
                    print(f"prepare exited {rc}", file=sys.stderr)
                    return 1
            wall, ru, rc = spawn(cmd)
            if rc != 0 and not a.ignore_failure:
                print(f"{label}: exit {rc}", file=sys.stderr)
                return 1
            if i >= a.warmup:
                runs[label].append((wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss, rc))
    results = []
    for label, cmd in cmds:
        r = runs[label]
        times = [x[0] for x in r]
        results.append(dict(command=label, mean=statistics.mean(times), median=statistics.median(times),
                            min=min(times), max=max(times),
                            user=statistics.mean(x[1] for x in r), system=statistics.mean(x[2] for x in r),
                            times=times, exit_codes=[x[4] for x in r],
                            max_rss_kib=statistics.median(x[3] for x in r)))
        print(f"{label}: median {statistics.median(times):.4f} s over {len(times)} runs", file=sys.stderr)
    with open(a.export_json, "w") as fh:
        json.dump(dict(results=results), fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
