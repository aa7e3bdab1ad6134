"""Generate the loop example's data: a subscription service's churn records, and three versions of its training feed.

Run from anywhere with `python3 generate.py`; it rewrites eval.csv and v1/, v2/, v3/ next to itself, byte for byte
the same every time (fixed seed, fixed formatting), so the committed files are its output.

The process. A customer has
    tenure_years     years since sign-up, uniform in [0, 6)
    monthly_fee      the monthly bill in hundreds of dollars, uniform in [0.2, 1.2)
    support_calls    support calls in the last quarter, Poisson with mean 1.5 (at most 8)
    annual_contract  1 for an annual contract, else 0 (month to month), half of the customers
and churns (label 1) with probability sigmoid(z), where
    z = 1.5 - 0.9 * tenure_years + 3.0 * (monthly_fee - 0.7) + 0.7 * support_calls - 3.0 * annual_contract
so long tenure and an annual contract keep customers, high bills and support calls lose them (about 30% churn).
Labels are drawn from that probability, so no classifier scores 100% on eval.csv.

The files:
    eval.csv      300 customers of the whole population: the fixed yardstick every model version is scored on.
    v1/train.csv  the first export: 40 month-to-month customers only (annual plans were not in the feed yet), so
                  a model trained on it never sees annual_contract vary and calls many annual customers churners.
    v2/train.csv  v1 plus 200 customers of the whole population with clean labels: a model trained on it
                  scores better on eval.csv.
    v3/train.csv  v2 plus 250 customers from a broken upstream join that recorded every annual renewal as a
                  cancellation (label 1 for every annual customer) and inverted 30% of the other labels. A model
                  trained on it learns that annual contracts churn and scores worse on eval.csv (the retrain a
                  promotion gate must refuse).
Each version's train.csv starts with the previous version's rows, in the same order: the feed only grows.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

SEED = 20240601
HEADER = ("tenure_years", "monthly_fee", "support_calls", "annual_contract", "label")
Row = tuple[float, float, int, int, int]


def poisson(rng: random.Random, mean: float, cap: int) -> int:
    """Knuth's method; small means only."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit or k >= cap:
            return k
        k += 1


def customer(rng: random.Random, annual_share: float = 0.5) -> Row:
    tenure = round(rng.uniform(0, 6), 2)
    fee = round(rng.uniform(0.2, 1.2), 2)
    calls = poisson(rng, 1.5, 8)
    annual = 1 if rng.random() < annual_share else 0
    z = 1.5 - 0.9 * tenure + 3.0 * (fee - 0.7) + 0.7 * calls - 3.0 * annual
    label = 1 if rng.random() < 1 / (1 + math.exp(-z)) else 0
    return tenure, fee, calls, annual, label


def broken(rng: random.Random) -> Row:
    """A customer as the broken join delivered it: annual customers churned, 30% of the others' labels inverted."""
    tenure, fee, calls, annual, label = customer(rng)
    if annual:
        label = 1
    elif rng.random() < 0.3:
        label = 1 - label
    return tenure, fee, calls, annual, label


def write(path: Path, rows: list[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(HEADER)] + [f"{t:.2f},{f:.2f},{c},{a},{y}" for t, f, c, a, y in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode())


def main() -> None:
    here = Path(__file__).resolve().parent
    rng = random.Random(SEED)
    evaluation = [customer(rng) for _ in range(300)]
    v1 = [customer(rng, annual_share=0.0) for _ in range(40)]
    v2 = v1 + [customer(rng) for _ in range(200)]
    v3 = v2 + [broken(rng) for _ in range(250)]
    write(here / "eval.csv", evaluation)
    for version, rows in (("v1", v1), ("v2", v2), ("v3", v3)):
        write(here / version / "train.csv", rows)
    print(f"eval.csv: {len(evaluation)} rows; v1: {len(v1)}, v2: {len(v2)}, v3: {len(v3)} training rows")


if __name__ == "__main__":
    main()
