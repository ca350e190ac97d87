"""What one Action step costs: wall time, API calls and writes of `cvf action` per command.

    python bench/action.py [--runs 5]

Each command runs as the action's Run step does (a fresh `cvf` process with the
environment of an Actions run) against the local GitHub simulator, so the figures include
Python start-up and imports, which dominate an Action run's own time (setup-python and
pip install are GitHub's and are not measured). A bare `cvf --version` is timed first as
the floor.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.ghsim import GitHubSimulator  # noqa: E402
from tests.rfc_samples import rfc_text  # noqa: E402
from tests.test_action_e2e import (  # noqa: E402
    BOT,
    CONFIG,
    REPO,
    RFC_PATH,
    TOKEN,
    Runner,
    pull_payload,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cvf = str(Path(sys.executable).parent / "cvf")
    floor = []
    for _ in range(args.runs):
        start = time.perf_counter()
        subprocess.run([cvf, "--version"], capture_output=True, check=True)
        floor.append(time.perf_counter() - start)
    print(f"cvf --version (start-up floor): median {statistics.median(floor) * 1000:.0f} ms")
    print(f"{'command':<22} {'median ms':>9} {'max ms':>7} {'API calls':>9} {'writes':>6}")
    with GitHubSimulator() as sim, tempfile.TemporaryDirectory() as tmp:
        sim.set_token(TOKEN, BOT)
        repo = sim.repo(REPO)
        repo.put_file(".github/cvf.yml", CONFIG)
        rfc = repo.add_pull(title="RFC", author="writer", files={RFC_PATH: rfc_text()},
                            head_ref="rfc-5")
        code = repo.add_pull(author="author", files={"src/a.py": "x"})
        for n in range(20):
            repo.add_workflow_run("CI", conclusion="success" if n % 4 else "failure")
        runner = Runner(sim, Path(tmp))
        (runner.workspace / "rfcs" / "0005-shared-vocabulary.md").write_text(rfc_text())
        cases = [
            ("handle (RFC PR)", "pull_request", pull_payload(rfc.number), {}),
            ("handle (code PR)", "pull_request", pull_payload(code.number), {}),
            ("lint", "pull_request", pull_payload(code.number), {"command": "lint"}),
            ("route --pr", "pull_request", pull_payload(code.number), {"command": "route"}),
            ("metrics", "schedule", {"schedule": "0 6 * * *"}, {"command": "metrics"}),
            ("tick", "schedule", {"schedule": "0 6 * * *"}, {"command": "tick"}),
        ]
        for label, event, payload, inputs in cases:
            times, calls, writes = [], 0, 0
            for _ in range(args.runs):
                sim.reset_log()
                start = time.perf_counter()
                result = runner.run(event, payload, **inputs)
                times.append(time.perf_counter() - start)
                if result.code not in (0, 1):
                    raise SystemExit(f"{label}: exit {result.code}\n{result.stdout}")
                calls = len(sim.requests)
                writes = len(sim.writes())
            print(f"{label:<22} {statistics.median(times) * 1000:>9.0f} "
                  f"{max(times) * 1000:>7.0f} {calls:>9} {writes:>6}")
    print("(API calls and writes: the last of the runs, i.e. a re-run: handle creates no new "
          "comment or label then, it only refreshes its check runs)")


if __name__ == "__main__":
    main()
