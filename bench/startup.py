"""Benchmark: what each entry point costs before it does anything, against a bare interpreter in the same run.

    python -m bench.startup [ROUNDS=5]     (from the repository root)

For each entry point (the offline plan, the operator, the kubectl plugins), in fresh interpreters with the packages
its install has (the operator with its image's only: bench/image.py):
- the wall time of importing its module, median of ROUNDS, and its ratio to `python -c 'import sys'` measured alike;
- the resident memory once imported (the child's peak RSS);
- where the time goes: `-X importtime`'s self time summed per top-level package, the heaviest first;
and the wall time of the offline plan (`modelplane plan --stack dev`, warm: after one run), against the same baseline.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.image import as_in_image

ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINTS = {  # what runs -> its module, and whether it runs in the operator's image (else: this virtualenv)
    "modelplane plan": ("infra.cli", False),
    "modelplane-operator": ("modelplane.operator.main", True),
    "kubectl notebook": ("modelplane.cli.notebook", False),
    "kubectl applybuild": ("modelplane.cli.applybuild", False),
    "kubectl promote": ("modelplane.cli.promote", False),
}
PEAK_RSS = "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
TOP = 6


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def median_seconds(argv: list[str], rounds: int) -> float:
    return statistics.median(timed(argv) for _ in range(rounds))


def peak_rss_mb(code: str) -> float:
    found = subprocess.run([sys.executable, "-c", f"{code}; {PEAK_RSS}"], cwd=ROOT, check=True,
                           capture_output=True, text=True)
    return int(found.stdout.split()[-1]) / 1024


def import_costs(code: str) -> dict[str, float]:
    """Milliseconds spent importing each top-level package's own modules (`-X importtime`'s self time, summed by
    package: what a package costs itself, not what it makes others import)."""
    found = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, check=True,
                           capture_output=True, text=True)
    costs: dict[str, float] = {}
    for line in found.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue  # the header line
        top = fields[2].strip().split(".")[0]
        costs[top] = costs.get(top, 0.0) + int(fields[0]) / 1000
    return costs


def main(rounds: int) -> None:
    baseline = median_seconds([sys.executable, "-c", "import sys"], rounds)
    print(f"baseline: python -c 'import sys' {baseline * 1000:.0f} ms (median of {rounds})")
    for label, (module, in_image) in ENTRY_POINTS.items():
        code = as_in_image(f"import {module}") if in_image else f"import sys; import {module}"
        seconds = median_seconds([sys.executable, "-c", code], rounds)
        costs = sorted(import_costs(code).items(), key=lambda kv: -kv[1])[:TOP]
        print(f"{label:20} import {seconds * 1000:5.0f} ms = {seconds / baseline:5.1f}x baseline  "
              f"RSS {peak_rss_mb(code):4.0f} MB  heaviest: "
              + ", ".join(f"{name} {ms:.0f} ms" for name, ms in costs))
    plan = [str(ROOT / ".venv" / "bin" / "modelplane"), "plan", "--stack", "dev"]
    timed(plan)  # warm: bytecode and the plan's caches written
    seconds = median_seconds(plan, rounds)
    print(f"{'modelplane plan --stack dev':28} {seconds:.2f} s = {seconds / baseline:.1f}x baseline (warm)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
