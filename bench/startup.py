"""Start-up benchmark: whole-process time of everyday commands against a bare interpreter.

    python bench/startup.py                  # builds a 1M-record metrics store first (~30 s)
    python bench/startup.py --store PATH     # reuse a store built before (kept with --keep)

Every Action step and CLI call pays the interpreter's start plus the imports of the
command it runs; this bench measures that as a ratio to ``python -c pass`` timed in the
same run, in turns (so the machine's load falls on all of them alike), and prints the
median of each. Targets (issue 15): ``cvf --help`` <= 10x, ``cvf rfc lint rfcs/`` <= 20x,
``cvf metrics report --period 24h`` on a 1M-record store <= 25x. It also lists the heavy
libraries each command imports (``-X importtime``), which should be none but its own.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

HEAVY = ("numpy", "github", "jsonschema", "cryptography", "requests", "jwt", "flask", "jinja2")


def cvf() -> list[str]:
    script = Path(sys.executable).parent / "cvf"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot"]


def build_store(size: int, folder: Path) -> Path:
    from metrics import NOW, generate  # bench/metrics.py: the metrics bench's records

    from bot.metrics.store import open_store

    data, db = folder / "records.jsonl", folder / "metrics.db"
    started = time.perf_counter()
    generate(size, data, folder / "exact.json")
    with data.open() as fh:
        open_store(db).ingest_lines(fh, where=data.name)
    data.unlink()
    print(f"built a {size:,}-record store in {time.perf_counter() - started:.1f} s "
          f"(records up to {NOW:%Y-%m-%d %H:%M})")
    return db


def heavy_imports(command: list[str]) -> list[str]:
    run = subprocess.run([command[0] if command[0] == sys.executable else sys.executable,
                          "-X", "importtime", *command_tail(command)],
                         capture_output=True, text=True, cwd=ROOT, check=False)
    found = set()
    for line in run.stderr.splitlines():
        name = line.rsplit("|", 1)[-1].strip()
        if name.split(".")[0] in HEAVY:
            found.add(name.split(".")[0])
    return sorted(found)


def command_tail(command: list[str]) -> list[str]:
    """The command as arguments to ``python`` (the cvf script is ``-m bot``)."""
    if command[0] == sys.executable:
        return command[1:]
    return ["-m", "bot", *command[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, help="An existing metrics store to report on.")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--keep", type=Path, help="Build the store into this folder.")
    args = parser.parse_args()
    from metrics import NOW

    with tempfile.TemporaryDirectory() as tmp:
        db = args.store
        if db is None:
            folder = args.keep or Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            db = build_store(args.size, folder)
        now = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
        commands = {
            "python -c pass": ([sys.executable, "-c", "pass"], None),
            "cvf --help": ([*cvf(), "--help"], 10),
            "cvf rfc lint rfcs/": ([*cvf(), "rfc", "lint", "rfcs/"], 20),
            "cvf metrics report --period 24h (1M)": (
                [*cvf(), "metrics", "report", "--period", "24h", "--store", str(db),
                 "--now", now], 25),
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, (command, _target) in commands.items():
                started = time.perf_counter()
                subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               check=True)
                times[name].append(time.perf_counter() - started)
        base = statistics.median(times["python -c pass"])
        print(f"{'command':<40} {'median ms':>9} {'ratio':>6} {'target':>7}  heavy imports")
        failed = False
        for name, (command, target) in commands.items():
            median = statistics.median(times[name])
            ratio = median / base
            ok = target is None or ratio <= target
            failed |= not ok
            shown = f"<={target}x" if target else ""
            heavy = ", ".join(heavy_imports(command)) if target else ""
            print(f"{name:<40} {median * 1000:9.1f} {ratio:5.1f}x {shown:>7}  "
                  f"{heavy or '-'}{'' if ok else '  MISSED'}")
        print(f"({args.runs} runs each, in turns; load average {os.getloadavg()[0]:.1f})")
        raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
