"""SIGKILL fault injection against enrol and zeroize; shared by the test suite and bench/vault.py.

Each run starts `fault_victim.py` in a subprocess, waits for `ready`, kills it
with SIGKILL after a random delay, then reopens the vault (which runs the
journaled recovery first) and checks the invariants:

* enrol: every record opens; every user acknowledged (`ok`) before the kill is
  stored; every stored template matches its user (no half-written record).
* zeroize: either nothing happened (active, every template intact) or the
  vault is erased: no root key, no sealed record, no fragment.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from limen.bio.templates import Modality
from limen.config import load_settings
from limen.vault import open_template_store

VICTIM = Path(__file__).with_name("fault_victim.py")
REPO = Path(__file__).resolve().parents[2]
ZEROIZE_USERS = 6


@dataclass
class CampaignResult:
    runs: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def _spawn(data_dir: Path, mode: str, dirs: list[Path]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(
        [sys.executable, str(VICTIM), str(data_dir), mode, *map(str, dirs)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def _kill_after_ready(proc: subprocess.Popen[str], delay: float) -> list[str]:
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if first.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"victim failed to start: {first!r} {proc.stderr.read() if proc.stderr else ''}")
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return [first.strip(), *(line.strip() for line in proc.stdout)]


def run_campaign(root: Path, runs: int, seed: int = 0, fragments: int = 0) -> CampaignResult:
    """`runs` kills alternating enrol / zeroize; fragments > 0 splits records across that many dirs."""
    sys.path.insert(0, str(VICTIM.parent))
    from fault_victim import embedding_of

    rng = random.Random(seed)
    result = CampaignResult()
    for run in range(runs):
        mode = "enrol" if run % 2 == 0 else "zeroize"
        data_dir = root / f"run-{run}"
        dirs = [root / f"run-{run}-frag-{i}" for i in range(fragments)]
        extra = {"fragments_n": fragments, "fragments_k": fragments - 1, "fragment_dirs": dirs} if fragments else {}
        settings = load_settings(data_dir, **extra)
        if mode == "zeroize":
            store = open_template_store(settings)
            for i in range(ZEROIZE_USERS):
                store.put(f"user-{i}", Modality.FACE, embedding_of(f"user-{i}"))
            store.close()
        delay = rng.uniform(0, 0.25) if mode == "enrol" else rng.uniform(0, 0.012)
        try:
            lines = _kill_after_ready(_spawn(data_dir, mode, dirs), delay)
        except RuntimeError as exc:
            result.failures.append(f"{data_dir}: {exc}")
            continue
        outcome = _check(settings, mode, lines, dirs, embedding_of, result)
        result.outcomes[outcome] = result.outcomes.get(outcome, 0) + 1
        result.runs += 1
    return result


def _check(settings, mode, lines, dirs, embedding_of, result: CampaignResult) -> str:  # type: ignore[no-untyped-def]
    try:
        store = open_template_store(settings)
        status = store.status()
        if mode == "enrol":
            acked = {line.split()[1] for line in lines if line.startswith("ok ")}
            stored = {user for user, _, _ in store.vault.templates()}
            missing = acked - stored
            wrong = [u for u in stored if store.distance(u, Modality.FACE, embedding_of(u)) > 0.05]
            if missing or wrong:
                result.failures.append(f"{settings.data_dir}: missing {sorted(missing)} wrong {wrong}")
            return f"enrol: {min(len(stored), 40) // 10 * 10}+ records"
        if status.state == "erased":
            leftovers = [p for d in dirs if d.exists() for p in d.iterdir()]
            key = settings.keys_dir / "vault-root.key"
            if key.exists() or leftovers or store.vault.records.count():
                result.failures.append(f"{settings.data_dir}: erased but key/records/fragments survive")
            return "zeroize: erased"
        if status.records != ZEROIZE_USERS or len(list(store.vault.templates())) != ZEROIZE_USERS:
            result.failures.append(f"{settings.data_dir}: active vault lost templates ({status.records})")
        return "zeroize: killed before it began (intact)"
    except Exception as exc:  # noqa: BLE001 - every exception is a finding here
        result.failures.append(f"{settings.data_dir}: {type(exc).__name__}: {exc}")
        return "error"
