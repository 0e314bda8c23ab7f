"""Brute force against the keypad at the fastest rate the lockout allows, for 30 simulated days.

    python bench/bruteforce.py [--days 30] [--locks 20] [--seed 1]

An attacker types maximal anti-peep entries (`PIN_ENTRY_MAX_DIGITS` random
digits: every window is one guess) or random offline codes, one entry every
`--entry-s` seconds, waiting out each lockout.  Every attempt goes through the
real `access.policy.judge`; the lockout counters are carried forward exactly as
the store would persist them.  For wall-clock speed the simulation hashes PINs
with a cheap Argon2 cost (the cost changes no outcome); the latency figures
(median, p95 of one keypad evaluation) use the production parameters.

Prints, per PIN length and for offline codes: attempts and guesses in the
period, successes over `--locks` independent locks, the analytic probability of
at least one success and the expected time to the first success.
Writes bench/results/bruteforce.json and bench/results/bruteforce.md.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from limen import thresholds as T
from limen.access import lockout, offline, pins
from limen.access.attempt import code_attempt, pin_attempt
from limen.access.model import AccessState, AccessUser, Credential, CredentialType, LockConfig, PermissionLevel
from limen.access.policy import judge

START = datetime(2026, 1, 5, tzinfo=UTC)
RESULTS = Path(__file__).resolve().parent / "results"


class _Pepper:
    """A random pepper key, as the key store's `pin-pepper` side key holds."""

    def __init__(self) -> None:
        self.key = random.randbytes(32)

    def mac(self, data: bytes) -> bytes:
        return hmac.new(self.key, data, hashlib.sha256).digest()


def lock_with_pin(pin: str, salt: bytes, config: LockConfig, others: int = 0, peppered: bool = True) -> AccessState:
    """A lock whose owner has `pin` (stored as the store stores it), plus `others` users with other PINs."""
    hasher = pins.PinHasher(_Pepper(), salt)
    users, creds = {}, []
    codes = [pin] + [f"{(int(pin) + 97 * (k + 1)) % 10 ** len(pin):0{len(pin)}d}" for k in range(others)]
    for i, code in enumerate(codes):
        uid = "owner" if i == 0 else f"user{i}"
        users[uid] = AccessUser(uid, i + 1, uid, permission=PermissionLevel.OWNER if i == 0 else PermissionLevel.MEMBER)
        secret = hasher.secret_for(code) if peppered else pins.hash_pin(code, salt)
        creds.append(Credential(f"pin:{i + 1}", uid, CredentialType.PIN, i + 1, secret=secret, pin_length=len(code),
                                created_at=START))
    return AccessState(users=users, credentials=tuple(creds), pin_salt=salt, pin_hasher=hasher, config=config)


def lock_with_codes(secret: bytes, config: LockConfig) -> AccessState:
    owner = AccessUser("owner", 1, "Owner", permission=PermissionLevel.OWNER)
    cred = Credential("offline_code:1", "owner", CredentialType.OFFLINE_CODE, 1, secret=secret, created_at=START)
    return AccessState(users={"owner": owner}, credentials=(cred,), config=config)


def attack(state: AccessState, guess: Any, days: float, entry_s: float) -> dict[str, Any]:
    """Run the attacker against `state` for `days`; `guess()` returns the next typed attempt."""
    t, end = START, START + timedelta(days=days)
    attempts, successes, first = 0, 0, None
    while t < end:
        if lockout.is_locked_out(state.lockout, t):
            assert state.lockout.locked_until is not None
            t = state.lockout.locked_until
            continue
        judgement = judge(guess(), state, t)
        attempts += 1
        if judgement.decision.accepted:
            successes += 1
            first = first or t
        if judgement.update.lockout is not None:
            state = replace(state, lockout=judgement.update.lockout)
        t += timedelta(seconds=entry_s)
    return {"attempts": attempts, "successes": successes,
            "first_success_h": None if first is None else (first - START).total_seconds() / 3600}


def expected_first_success_days(config: LockConfig, p: float, entry_s: float) -> float:
    """Days until the attacker's expected number of successes reaches 1 (attempts ≥ 1/p)."""
    needed = 1.0 / p
    per_cycle = config.wrong_code_entry_limit
    t, lockouts, done = 0.0, 0, 0.0
    while done + per_cycle < needed:
        t += per_cycle * entry_s + lockout.disable_time_s(config, lockouts) - entry_s
        done += per_cycle
        lockouts += 1
        if lockout.disable_time_s(config, lockouts) == config.lockout_max_disable_s:
            cycle_s = per_cycle * entry_s + config.lockout_max_disable_s - entry_s
            t += (needed - done) / per_cycle * cycle_s
            return t / 86400
    return (t + (needed - done) * entry_s) / 86400


def pin_case(length: int, args: argparse.Namespace, config: LockConfig, rng: random.Random) -> dict[str, Any]:
    entry_digits = T.PIN_ENTRY_MAX_DIGITS
    results = []
    for _ in range(args.locks):
        pin = "".join(rng.choice("0123456789") for _ in range(length))
        state = lock_with_pin(pin, pins.new_salt(), config)
        results.append(attack(state, lambda: pin_attempt("".join(rng.choice("0123456789")
                                                                  for _ in range(entry_digits))),
                              args.days, args.entry_s))
    attempts = results[0]["attempts"]
    per_entry = pins.guesses_per_entry(length, entry_digits)
    p_attempt = min(1.0, per_entry / 10**length)
    p_any = 1 - (1 - p_attempt) ** attempts
    return {
        "credential": f"{length}-digit PIN",
        "attempts_in_period": attempts,
        "guesses_in_period": attempts * per_entry,
        "successes": sum(r["successes"] for r in results),
        "locks": args.locks,
        "p_success_in_period": p_any,
        "expected_days_to_first_success": expected_first_success_days(config, p_attempt, args.entry_s),
    }


def code_case(args: argparse.Namespace, config: LockConfig, rng: random.Random) -> dict[str, Any]:
    results = []
    mac_digits = T.OFFLINE_CODE_MAC_DIGITS
    for _ in range(args.locks):
        state = lock_with_codes(offline.new_secret(), config)

        def guess() -> Any:
            body = f"{rng.randrange(100):02d}" + "".join(rng.choice("0123456789") for _ in range(mac_digits))
            return code_attempt("1" + body)

        results.append(attack(state, guess, args.days, args.entry_s))
    attempts = results[0]["attempts"]
    # the lock cannot know which codes were issued offline: a guess succeeds if its MAC verifies for any of
    # the start hours a single-use code could still be valid from (the kind with the most candidates)
    p_attempt = offline.candidates_per_guess(offline.CodeKind.SINGLE_USE) / offline.code_space(
        offline.CodeKind.SINGLE_USE)
    return {
        "credential": "offline code (single-use)",
        "attempts_in_period": attempts,
        "guesses_in_period": attempts,
        "successes": sum(r["successes"] for r in results),
        "locks": args.locks,
        "p_success_in_period": 1 - (1 - p_attempt) ** attempts,
        "expected_days_to_first_success": expected_first_success_days(config, p_attempt, args.entry_s),
    }


def latency_ms(samples: int, others: int = 0, peppered: bool = True) -> dict[str, float]:
    """One wrong keypad entry (maximal anti-peep entry, production Argon2id), in milliseconds."""
    state = lock_with_pin("246813", pins.new_salt(), LockConfig(), others, peppered)
    times = []
    for i in range(samples):
        entry = f"{i:06d}" + "135790"[: T.PIN_ENTRY_MAX_DIGITS - 6]
        t0 = time.perf_counter()
        judge(pin_attempt(entry), state, START)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"median_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))],
            "samples": samples, "stored_pins": 1 + others, "format": "salted+peppered" if peppered else "lock salt",
            "load_avg_1min": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--locks", type=int, default=20, help="independent simulated locks per case")
    parser.add_argument("--entry-s", type=float, default=3.0, help="seconds to type one entry")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-samples", type=int, default=20)
    args = parser.parse_args()

    latency = latency_ms(args.latency_samples)
    latencies = [latency_ms(args.latency_samples, 0, peppered=False), latency,
                 latency_ms(max(5, args.latency_samples // 4), 3)]  # the old format as peer; a household of 4
    real_memory, real_time = T.PIN_ARGON2_MEMORY_KIB, T.PIN_ARGON2_TIME_COST
    T.PIN_ARGON2_MEMORY_KIB, T.PIN_ARGON2_TIME_COST = 64, 1  # simulation speed only: outcomes do not depend on it
    config = LockConfig()
    rng = random.Random(args.seed)
    try:
        cases = [pin_case(n, args, config, rng) for n in (4, 6, 8)] + [code_case(args, config, rng)]
    finally:
        T.PIN_ARGON2_MEMORY_KIB, T.PIN_ARGON2_TIME_COST = real_memory, real_time

    settings = {"days": args.days, "entry_s": args.entry_s, "locks": args.locks, "seed": args.seed,
                "wrong_code_entry_limit": config.wrong_code_entry_limit,
                "user_code_temporary_disable_time_s": config.user_code_temporary_disable_time_s,
                "lockout_escalation_factor": config.lockout_escalation_factor,
                "lockout_max_disable_s": config.lockout_max_disable_s,
                "pin_entry_max_digits": T.PIN_ENTRY_MAX_DIGITS, "offline_code_mac_digits": T.OFFLINE_CODE_MAC_DIGITS}
    report = {"settings": settings, "latency": latency, "latencies": latencies, "cases": cases}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bruteforce.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"# Brute force over {args.days:g} days (`python bench/bruteforce.py`)",
        "",
        f"Lockout: {config.wrong_code_entry_limit} wrong entries → {config.user_code_temporary_disable_time_s} s, "
        f"×{config.lockout_escalation_factor} per consecutive lockout, capped at "
        f"{config.lockout_max_disable_s} s; anti-peep entries of {T.PIN_ENTRY_MAX_DIGITS} digits.",
        "",
        "| credential | attempts | guesses | successes (locks) | P(≥1 success) | expected time to 1st success |",
        "|---|---|---|---|---|---|",
    ]
    for c in cases:
        days = c["expected_days_to_first_success"]
        when = f"{days / 365.25:,.1f} years" if days > 365 else f"{days:,.1f} days"
        lines.append(f"| {c['credential']} | {c['attempts_in_period']} | {c['guesses_in_period']} | "
                     f"{c['successes']} ({c['locks']}) | {c['p_success_in_period']:.2e} | {when} |")
    lines += ["", "Wrong keypad entry (12 digits, anti-peep) with production Argon2id:", "",
              "| stored PINs | hash format | median ms | p95 ms | samples | load (1 min) |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {x['stored_pins']} | {x['format']} | {x['median_ms']:.1f} | {x['p95_ms']:.1f} | {x['samples']} | "
              f"{x['load_avg_1min']} |" for x in latencies]
    (RESULTS / "bruteforce.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
