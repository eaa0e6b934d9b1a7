#!/usr/bin/env python3
"""Assignment cases solved by lap.lapjv (lapx), for the Rust port's cross-check.

Writes tests/fixtures/bytetrack/assignment/lapjv_cases.json: a list of
{"kind", "rows", "cols", "cost" (row-major), "cost_limit" (null = square, no padding),
 "x", "y"} where x / y are lapjv's row -> column and column -> row maps (-1 = unmatched).
Kinds: "continuous" (distinct costs: the optimum is unique, the Rust result must be identical),
"quantized" and "duplicates" (ties: several optima; the Rust test reports how often it picks the
same one as lap and requires the same total), "square" (no cost limit, integer costs).
"""
import json
import os

import lap
import numpy as np


def case(kind, cost, limit):
    cost = np.asarray(cost, dtype=np.float64)
    if limit is None:
        _, x, y = lap.lapjv(cost)
    else:
        _, x, y = lap.lapjv(cost, extend_cost=True, cost_limit=limit)
    return {"kind": kind, "rows": int(cost.shape[0]), "cols": int(cost.shape[1]),
            "cost": [float(v) for v in cost.ravel()], "cost_limit": limit,
            "x": [int(v) for v in x], "y": [int(v) for v in y]}


def main():
    rng = np.random.RandomState(11)
    cases = []
    for _ in range(300):
        r, c = rng.randint(1, 13), rng.randint(1, 13)
        limit = float(rng.choice([0.5, 0.7, 0.8]))
        cases.append(case("continuous", rng.uniform(0, 1, (r, c)), limit))
    for _ in range(300):
        r, c = rng.randint(1, 10), rng.randint(1, 10)
        limit = float(rng.choice([0.5, 0.7, 0.8]))
        cases.append(case("quantized", np.round(rng.uniform(0, 1, (r, c)) * 10) / 10, limit))
    for _ in range(100):
        r, c = rng.randint(1, 8), rng.randint(1, 8)
        m = rng.uniform(0, 1, (r, c))
        m[:, rng.randint(0, c)] = m[:, rng.randint(0, c)]  # identical columns (duplicate detections)
        if r > 1:
            m[rng.randint(0, r)] = m[rng.randint(0, r)]     # identical rows
        cases.append(case("duplicates", m, 0.8))
    for _ in range(100):
        n = rng.randint(1, 10)
        cases.append(case("square", rng.randint(0, 5, (n, n)).astype(float), None))
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    out = os.path.join(root, "tests", "fixtures", "bytetrack", "assignment")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "lapjv_cases.json")
    with open(path, "w") as fh:
        fh.write('{"lap": %s, "cases": [\n' % json.dumps(getattr(lap, "__version__", "?")))
        fh.write(",\n".join(json.dumps(c, separators=(",", ":")) for c in cases))
        fh.write("\n]}\n")
    print(f"{len(cases)} cases -> {path} ({os.path.getsize(path) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
