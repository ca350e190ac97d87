"""Fuzz: the targets of tests/test_fuzz.py with a big budget, counting failures.

    python bench/fuzz.py                          # 100,000 examples per target (hypothesis)
    python bench/fuzz.py -n 5000 --targets slash webhook
    python bench/fuzz.py --engine atheris -n 100000   # coverage-guided, when atheris imports

Unlike the test run, a failing example does not stop the target: every escaping
exception is counted (by type and first line) and the run goes on, so one bug does not
hide the next. Prints, per target, the examples run, the failures, the slowest example
(a hang would show here: anything over ``--slow`` seconds counts as a failure too) and
the time taken. Exit status 1 when any target failed.

The atheris engine drives the same hypothesis strategies with libFuzzer's coverage-guided
byte mutation (hypothesis' ``fuzz_one_input``); atheris is not a dependency of the
project (``pip install atheris``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from tests.test_fuzz import HANDLER_ERRORS, TARGETS  # noqa: E402


@dataclass
class Tally:
    examples: int = 0
    failures: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    first: dict[str, str] = field(default_factory=dict)
    slowest: float = 0.0

    def run(self, check: Any, example: Any, slow: float) -> None:
        self.examples += 1
        started = time.perf_counter()
        try:
            check(example)
        except Exception as exc:  # counted, not raised: the run goes on
            first = str(exc).splitlines()[0][:120] if str(exc) else ""
            self.failed(f"{type(exc).__name__}: {first}", example,
                        traceback.format_exc(limit=-3))
        took = time.perf_counter() - started
        self.slowest = max(self.slowest, took)
        if took > slow:
            self.failed(f"slow: one example took {took:.1f}s", example, "")

    def failed(self, kind: str, example: Any, trace: str) -> None:
        self.failures += 1
        self.kinds[kind] += 1
        if kind not in self.first:
            self.first[kind] = f"{repr(example)[:300]}\n{trace}"

    def line(self, name: str, seconds: float) -> str:
        return (f"{name:<13} {self.examples:>8} examples  {self.failures:>5} failures  "
                f"slowest {1000 * self.slowest:7.1f} ms  {seconds:7.1f} s "
                f"({self.examples / seconds if seconds else 0:,.0f}/s)")


def run_hypothesis(name: str, examples: int, slow: float) -> tuple[Tally, float]:
    target = TARGETS[name]
    tally = Tally()

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    @given(target.strategy)
    def run(example: Any) -> None:
        tally.run(target.check, example, slow)
        if tally.examples % 10000 == 0:
            print(f"  ... {name}: {tally.examples} examples, {tally.failures} failures, "
                  f"{time.perf_counter() - started:.0f}s", flush=True)

    started = time.perf_counter()
    run()
    return tally, time.perf_counter() - started


def run_atheris_child(name: str, examples: int, slow: float, instrument: bool) -> None:
    """One target under libFuzzer, in its own process (libFuzzer exits when done)."""
    import atheris

    target = TARGETS[name]
    tally = Tally()
    started = time.perf_counter()

    @settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(target.strategy)
    def run(example: Any) -> None:
        if tally.examples < examples:
            tally.run(target.check, example, slow)

    printed = [-1]

    def one(data: bytes) -> None:
        run.hypothesis.fuzz_one_input(data)  # type: ignore[attr-defined]
        if tally.examples % 500 == 0 and tally.examples != printed[0]:
            printed[0] = tally.examples
            report = {"name": name, "examples": tally.examples, "failures": tally.failures,
                      "kinds": dict(tally.kinds), "first": tally.first,
                      "slowest": tally.slowest, "seconds": time.perf_counter() - started}
            print("FUZZ-REPORT " + json.dumps(report), flush=True)
            if tally.examples >= examples:
                os._exit(0)  # libFuzzer would go on with runs that count nothing

    # Coverage guides the byte mutation; instrumenting every bot function costs about
    # two thirds of the speed, so it is asked for with --instrument.
    atheris.instrument_func(target.check)
    if instrument:
        for module in [m for n, m in sys.modules.items() if n == "bot" or n.startswith("bot.")]:
            for value in vars(module).values():
                if callable(value) and getattr(value, "__module__", "") == module.__name__ \
                        and hasattr(value, "__code__"):
                    atheris.instrument_func(value)
    # libFuzzer counts runs, and hypothesis turns some byte strings down, so ask for more
    # runs than examples; the report stops counting at ``examples``.
    atheris.Setup([sys.argv[0], f"-runs={examples * 3}", "-print_final_stats=0"], one)
    atheris.Fuzz()


def run_atheris(name: str, examples: int, slow: float,
                instrument: bool = False) -> tuple[Tally, float]:
    proc = subprocess.run([sys.executable, __file__, "--atheris-child", name, "-n",
                           str(examples), "--slow", str(slow),
                           *(["--instrument"] if instrument else [])],
                          capture_output=True, text=True, check=False)
    reports = [json.loads(line.split(" ", 1)[1]) for line in proc.stdout.splitlines()
               if line.startswith("FUZZ-REPORT ")]
    tally = Tally()
    if not reports:
        tally.failed(f"atheris exited {proc.returncode} without a report", None,
                     proc.stderr[-2000:])
        return tally, 0.0
    last = reports[-1]
    tally.examples, tally.failures = last["examples"], last["failures"]
    tally.kinds, tally.first, tally.slowest = Counter(last["kinds"]), last["first"], last["slowest"]
    return tally, last["seconds"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--examples", type=int, default=100_000)
    parser.add_argument("--targets", nargs="*", choices=sorted(TARGETS), default=sorted(TARGETS))
    parser.add_argument("--engine", choices=["hypothesis", "atheris"], default="hypothesis")
    parser.add_argument("--slow", type=float, default=5.0,
                        help="seconds after which one example counts as a hang")
    parser.add_argument("--instrument", action="store_true",
                        help="atheris: coverage of every bot function (slower)")
    parser.add_argument("--atheris-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.atheris_child:
        logging.disable(logging.CRITICAL)
        run_atheris_child(args.atheris_child, args.examples, args.slow, args.instrument)
        return 0

    logging.disable(logging.CRITICAL)  # handler failures are counted, not printed
    print(f"fuzz engine {args.engine}, {args.examples:,} examples per target", flush=True)
    failed = False
    for name in args.targets:
        if args.engine == "atheris":
            tally, seconds = run_atheris(name, args.examples, args.slow, args.instrument)
        else:
            tally, seconds = run_hypothesis(name, args.examples, args.slow)
        print(tally.line(name, seconds), flush=True)
        for kind, count in tally.kinds.most_common(5):
            print(f"    {count:>6} x {kind}")
            print("        first: " + tally.first[kind].replace("\n", "\n        ")[:1500])
        if name == "webhook" and HANDLER_ERRORS:
            print(f"    (not failures: {sum(HANDLER_ERRORS.values())} signed payloads with "
                  f"wrongly typed nested fields answered 'a handler failed': "
                  f"{dict(HANDLER_ERRORS)})")
        failed |= bool(tally.failures)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
