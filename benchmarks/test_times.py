"""Where the test suite's time goes: the ten slowest tests and the total, so the next slow test is seen
when it lands.

    python benchmarks/test_times.py                    # the README's test command (whole suite)
    python benchmarks/test_times.py -m "not slow"      # the edit loop
    python benchmarks/test_times.py --from-xml r.xml   # read a JUnit report a run already wrote
    python benchmarks/test_times.py --compare 2 -m "not slow"   # one process against 2 xdist workers

Runs pytest once (extra arguments go to pytest), reads its JUnit XML report and prints the wall time,
the counts (passed / failed / skipped), the time per test file and the ten slowest tests (setup, call
and teardown together, so a module fixture's cost shows on the test that first needs it). Not a test:
timings never decide pass or fail.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_pytest(args: list[str], report: Path) -> tuple[int, float]:
    """Run pytest in the repository with a JUnit report; (exit code, wall seconds)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *args]
    t0 = time.monotonic()
    rc = subprocess.call(cmd, cwd=ROOT)
    return rc, time.monotonic() - t0


def read_report(report: Path) -> list[dict]:
    """One dict per test case: name, file, seconds, outcome."""
    cases = []
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
        module = case.get("classname", "")
        cases.append(
            {
                "name": f"{module.replace('.', '/')}.py::{case.get('name')}",
                "file": module.split(".")[-1] if module else "?",
                "seconds": float(case.get("time") or 0.0),
                "outcome": outcome,
            }
        )
    return cases


def summary(cases: list[dict], wall: float | None, top: int = 10) -> str:
    counts: dict[str, int] = defaultdict(int)
    per_file: dict[str, float] = defaultdict(float)
    for c in cases:
        counts[c["outcome"]] += 1
        per_file[c["file"]] += c["seconds"]
    total = sum(c["seconds"] for c in cases)
    lines = [
        f"tests: {len(cases)} ({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))})",
        f"time in tests: {total:.0f} s" + (f"; wall time: {wall:.0f} s" if wall is not None else ""),
        "",
        f"{top} slowest tests (setup + call + teardown):",
    ]
    for c in sorted(cases, key=lambda c: -c["seconds"])[:top]:
        lines.append(f"  {c['seconds']:7.1f} s  {c['name']}")
    lines += ["", f"{top} slowest files:"]
    for name, secs in sorted(per_file.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {secs:7.1f} s  {name}")
    return "\n".join(lines)


def compare(args: list[str], workers: int) -> int:
    """The same tests in one process and on `workers` pytest-xdist workers, side by side in one run."""
    walls, rcs = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (0, workers):
            report = Path(tmp) / f"n{n}.xml"
            rc, walls[n] = run_pytest([*args, "-n", str(n)], report)
            cases = read_report(report) if report.exists() else []
            print(f"-n {n}: exit {rc}, {len(cases)} tests, wall {walls[n]:.0f} s", flush=True)
            rcs.append(rc)
    print(f"one process / {workers} workers: {walls[0] / walls[workers]:.2f}x")
    return max(rcs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from-xml", type=Path, help="summarise this JUnit report instead of running pytest")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument(
        "--compare", type=int, metavar="N", help="run in one process (-n0) and on N workers; the ratio"
    )
    ns, rest = parser.parse_known_args(argv)
    if ns.compare:
        return compare(rest, ns.compare)
    if ns.from_xml:
        print(summary(read_report(ns.from_xml), None, ns.top))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        rc, wall = run_pytest(rest, report)
        if not report.exists():
            print(f"pytest wrote no report (exit {rc})", file=sys.stderr)
            return rc or 1
        print(summary(read_report(report), wall, ns.top))
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
