"""Run the batch benchmark: generate the logs, alternate baseline and ours, write the table."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.check import compare, read_rfm
from benchmarks.generate import ensure, parse_size, size_label

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "out"
DEFAULT_DATA = Path(os.environ.get("PERSONA_BENCH_DATA", "/tmp/persona-bench"))
#: The process pairs of one round, run in this order: baseline, ours, baseline, ours, ...
STEPS = (
    ("csv", "baseline"), ("csv", "ours"), ("csv", "cli"),
    ("parquet", "baseline"), ("parquet", "ours"),
)
TARGETS = {"csv": 8.0, "parquet": 12.0, "cli": 4.0, "memory": 1 / 3, "growth": 12.0}


@dataclass
class Run:
    """One process: its wall time, in-process time (None for the CLI) and peak RSS."""

    fmt: str
    method: str
    round: int
    wall: float
    seconds: float | None
    peak_mb: float


@dataclass
class SizeResult:
    lines: int
    customers: int = 0
    runs: list[Run] = field(default_factory=list)
    checks: dict[str, dict] = field(default_factory=dict)

    def of(self, fmt: str, method: str) -> list[Run]:
        return sorted((r for r in self.runs if (r.fmt, r.method) == (fmt, method)),
                      key=lambda r: r.round)


# Runs one command and reports its wall time and its own peak RSS. Linux carries the peak
# of the memory a process execs from into its ru_maxrss, and subprocess (vfork) execs the
# child from this process's memory: measured from here, every child would report at least
# this process's own peak (after generating 10M lines in memory, gigabytes). This launcher
# is a fresh, small process, so what it measures is the command's own.
_LAUNCHER = """
import json, os, sys, time
start = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as out:
    json.dump({"wall": wall, "status": status, "maxrss_kib": usage.ru_maxrss}, out)
"""


def _measure(argv: list[str], env: dict[str, str], log: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB and stdout of one process running ``argv``.

    Through ``_LAUNCHER``: ``wait4`` on a child of this process would report this process's
    peak when it is the larger (the kernel keeps the peak of the memory a process execs
    from), and this one may have generated the data.
    """
    err = log.with_suffix(".err")
    facts = log.with_suffix(".rusage.json")
    executable = argv[0] if os.path.isabs(argv[0]) else shutil.which(argv[0])
    with open(log, "w") as stdout, open(err, "w") as stderr:
        launched = subprocess.run([sys.executable, "-c", _LAUNCHER, str(facts), executable,
                                   *argv[1:]], cwd=ROOT, env=env, stdout=stdout, stderr=stderr)
    if launched.returncode != 0:
        raise RuntimeError(f"the launcher of {shlex.join(argv)} failed:\n{err.read_text()}")
    found = json.loads(facts.read_text())
    code = os.waitstatus_to_exitcode(found["status"])
    if code != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed ({code}):\n{err.read_text()}")
    return found["wall"], found["maxrss_kib"] / 1024, log.read_text()  # KiB on Linux


def _run_one(fmt: str, method: str, path: Path, work: Path, env: dict[str, str]) -> Run:
    out = work / f"{method}-{fmt}.csv"
    if method == "cli":
        argv = [sys.executable, "-m", "dashapp", "segment", str(path), "--k", "4",
                "--out", str(out), "--summary", str(work / f"summary-{fmt}.json")]
    else:
        argv = [sys.executable, "-m", "benchmarks.worker", method, str(path), str(out)]
    wall, peak, stdout = _measure(argv, env, work / f"{method}-{fmt}.log")
    seconds = None if method == "cli" else json.loads(stdout.strip().splitlines()[-1])["seconds"]
    return Run(fmt, method, 0, wall, seconds, peak)


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # Our caps are for uploads through the browser; the CLI on a local 10M-line log lifts them.
    env["PERSONA_MAX_UPLOAD_MB"] = str(1 << 20)
    env["PERSONA_MAX_ROWS"] = str(1 << 40)
    return env


def _warm(path: Path) -> None:
    with open(path, "rb") as handle:
        while handle.read(1 << 24):
            pass


def bench_size(lines: int, rounds: int, data_dir: Path, out: Path, seed: int,
               duckdb_memory: str | None = None) -> SizeResult:
    dataset = ensure(lines, data_dir, seed)
    work = out / f"work-{size_label(lines)}"
    work.mkdir(parents=True, exist_ok=True)
    env = _environment()
    if duckdb_memory:
        env["PERSONA_DUCKDB_MEMORY"] = duckdb_memory
    for path in (dataset.csv, dataset.parquet):
        _warm(path)
    result = SizeResult(lines)
    for number in range(1, rounds + 1):
        for fmt, method in STEPS:
            path = dataset.csv if fmt == "csv" else dataset.parquet
            run = _run_one(fmt, method, path, work, env)
            run.round = number
            result.runs.append(run)
            shown = f"{run.seconds:6.2f} s in process, " if run.seconds is not None else ""
            print(f"  {size_label(lines):>5} round {number} {fmt:<7} {method:<8} "
                  f"{shown}{run.wall:6.2f} s wall, {run.peak_mb:7.0f} MB peak", flush=True)
        if number == 1:
            result.checks = _check(work)
            for name, check in result.checks.items():
                print(f"  {size_label(lines):>5} check {name}: {check['text']}", flush=True)
    result.customers = result.checks["csv"]["customers"]
    return result


def _check(work: Path) -> dict[str, dict]:
    checks = {}
    for name, (base, ours) in {
        "csv": ("baseline-csv.csv", "ours-csv.csv"),
        "cli": ("baseline-csv.csv", "cli-csv.csv"),
        "parquet": ("baseline-parquet.csv", "ours-parquet.csv"),
    }.items():
        agreement = compare(read_rfm(work / base), read_rfm(work / ours))
        checks[name] = agreement.to_dict() | {"text": agreement.describe()}
    return checks


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _ratio(base: list[Run], ours: list[Run], attr: str) -> float:
    """Median over rounds of baseline / ours within the same round."""
    return _median([getattr(b, attr) / getattr(o, attr) for b, o in zip(base, ours)])


def rows(result: SizeResult) -> list[dict]:
    """One row per comparison: medians, the median per-round ratio and peak memory."""
    out = []
    for label, fmt, method, attr in (
        ("CSV -> labels, in process", "csv", "ours", "seconds"),
        ("Parquet -> labels, in process", "parquet", "ours", "seconds"),
        ("CLI whole process vs baseline whole process (CSV)", "csv", "cli", "wall"),
    ):
        base, ours = result.of(fmt, "baseline"), result.of(fmt, method)
        out.append({
            "lines": result.lines, "customers": result.customers, "comparison": label,
            "key": "cli" if method == "cli" else fmt,
            "baseline_s": _median([getattr(r, attr) for r in base]),
            "ours_s": _median([getattr(r, attr) for r in ours]),
            "ratio": _ratio(base, ours, attr),
            "baseline_mb": _median([r.peak_mb for r in base]),
            "ours_mb": _median([r.peak_mb for r in ours]),
        })
    return out


def table(results: list[SizeResult]) -> str:
    lines = [
        "| lines | customers | comparison | baseline median s | ours median s "
        "| median ratio baseline/ours | baseline peak RSS MB | ours peak RSS MB "
        "| ours/baseline RSS |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        for row in rows(result):
            lines.append(
                f"| {size_label(row['lines'])} | {row['customers']:,} | {row['comparison']} "
                f"| {row['baseline_s']:.2f} | {row['ours_s']:.2f} | {row['ratio']:.2f}x "
                f"| {row['baseline_mb']:,.0f} | {row['ours_mb']:,.0f} "
                f"| {row['ours_mb'] / row['baseline_mb']:.2f} |"
            )
    return "\n".join(lines)


def targets(results: list[SizeResult]) -> list[str]:
    """The issue's targets at the largest size measured, each met or missed."""
    largest = max(results, key=lambda r: r.lines)
    by_key = {row["key"]: row for row in rows(largest)}
    label = size_label(largest.lines)

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    notes = []
    for key, what in (("csv", "CSV -> labels"), ("parquet", "Parquet -> labels"),
                      ("cli", "CLI whole process")):
        ratio = by_key[key]["ratio"]
        notes.append(f"- {what} at {label}: {ratio:.2f}x, target >= {TARGETS[key]:g}x: "
                     f"{verdict(ratio >= TARGETS[key])}")
    for key in ("csv", "parquet", "cli"):
        share = by_key[key]["ours_mb"] / by_key[key]["baseline_mb"]
        notes.append(f"- Peak memory ({by_key[key]['comparison']}) at {label}: {share:.2f} of "
                     f"the baseline, target <= 0.33: {verdict(share <= TARGETS['memory'])}")
    sizes = {r.lines: r for r in results}
    if largest.lines // 10 in sizes:
        small = sizes[largest.lines // 10]
        for fmt in ("csv", "parquet"):
            growth = (_median([r.seconds for r in largest.of(fmt, "ours")])
                      / _median([r.seconds for r in small.of(fmt, "ours")]))
            notes.append(f"- Growth, ours {fmt} in process, {label} / "
                         f"{size_label(small.lines)}: {growth:.1f}, target <= 12: "
                         f"{verdict(growth <= TARGETS['growth'])}")
    for result in results:
        for name, check in result.checks.items():
            notes.append(f"- Check at {size_label(result.lines)}, {name}: {check['text']}")
    return notes


def report(results: list[SizeResult], command: str) -> str:
    return "\n".join([
        "# Batch benchmark: the paper's pipeline (baseline) against ours",
        "",
        f"Command: `{command}`",
        "",
        table(results),
        "",
        *targets(results),
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--sizes", default="100k,1m,10m",
                        help="comma-separated line counts (default: 100k,1m,10m)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per size (default: 5)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"results folder (default: {DEFAULT_OUT.relative_to(ROOT)})")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA,
                        help=f"where generated logs are cached (default: {DEFAULT_DATA})")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    parser.add_argument("--duckdb-memory", default=None,
                        help="PERSONA_DUCKDB_MEMORY for our runs, e.g. 300MB (default: DuckDB's)")
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks " + shlex.join(sys.argv[1:] if argv is None else argv)
    results = []
    for lines in sizes:
        print(f"{size_label(lines)} lines: {args.rounds} rounds", flush=True)
        results.append(bench_size(lines, args.rounds, args.data_dir, args.out, args.seed,
                                  args.duckdb_memory))
    text = report(results, command.strip())
    (args.out / "results.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps(
        [asdict(r) for r in results], indent=2) + "\n")
    print()
    print(text)
    return 0 if all(c["ok"] for r in results for c in r.checks.values()) else 1
