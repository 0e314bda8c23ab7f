"""The brute-force bench still runs (one simulated day, one lock) and reports consistent figures."""

from __future__ import annotations

import importlib.util
import random
import sys
from argparse import Namespace
from pathlib import Path

from limen.access.model import LockConfig

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bruteforce.py"


def load_bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_bruteforce", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_bruteforce"] = module
    spec.loader.exec_module(module)
    return module


def test_one_day_of_brute_force_opens_nothing() -> None:
    bench = load_bench()
    args = Namespace(days=1.0, locks=1, entry_s=3.0)
    config = LockConfig()
    case = bench.pin_case(6, args, config, random.Random(3))
    # bursts of 5 attempts (3 s apart), each followed by a lockout of 1, 2, 4, … minutes
    expected, t, k = 0, 0.0, 0
    while t < 86_400:
        expected += 5
        t += 4 * 3.0 + 60 * 2**k
        k += 1
    assert case["attempts_in_period"] == expected
    assert case["successes"] == 0 and case["guesses_in_period"] == expected * 7
    assert case["expected_days_to_first_success"] > 365 * 10
    codes = bench.code_case(args, config, random.Random(3))
    assert codes["successes"] == 0 and codes["attempts_in_period"] == expected
