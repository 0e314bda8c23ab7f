"""SIGKILL fault injection against the tamper response; shared by the test suite and bench/tamper.py.

Each run copies a prepared data directory (vault provisioned, templates
enrolled), starts `fault_victim.py`, tells it to respond to a tamper, and
kills it with SIGKILL a random delay after it reported the intent durable.
Then `open_runtime` is called as at the next start (vault recovery, then tamper
recovery) and the invariants are checked:

* no template can be unsealed (a fresh process opening the vault finds none);
* the lockdown is in force (`is_locked_down`, and the access flag mirrors it);
* the TAMPER event is in the audit chain, the chain verifies, and no incident
  was recorded twice; the intent journal is idle.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

VICTIM = Path(__file__).with_name("fault_victim.py")
REPO = Path(__file__).resolve().parents[2]


@dataclass
class CampaignResult:
    runs: int = 0
    completed_before_kill: int = 0
    recovered: int = 0
    delays_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def prepare(template: Path, users: int = 5) -> None:
    """A provisioned vault with `users` templates and an audit trail, to copy for every run."""
    from limen.audit import open_audit
    from limen.bio.templates import Modality
    from limen.config import load_settings
    from limen.vault import open_template_store

    settings = load_settings(template)
    store = open_template_store(settings)
    for i in range(users):
        store.put(f"user-{i}", Modality.FACE, np.random.default_rng(i).normal(0, 0.1, 128))
    store.close()
    open_audit(settings).close()


class Server:
    """The fork server of `fault_victim.py`: one interpreter start for the whole campaign."""

    def __init__(self) -> None:
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.proc = subprocess.Popen([sys.executable, str(VICTIM)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        first = self._line()
        if first != "ready":
            self.close()
            raise RuntimeError(f"victim server failed to start: {first!r}")

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def kill_after_journal(self, data_dir: Path, delay: float) -> list[str]:
        """Start one response in `data_dir`; SIGKILL it `delay` s after its intent is durable."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"run {data_dir}\n")
        self.proc.stdin.flush()
        lines = [self._line()]
        word, _, pid = lines[0].partition(" ")
        if word != "journaled":
            raise RuntimeError(f"victim did not start its response: {lines[0]!r}")
        if delay > 0:
            time.sleep(delay)
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
        while "exited" not in lines[-1]:  # a kill mid-print can glue "done PID" (no newline) to "exited PID"
            lines.append(self._line())
            if not lines[-1]:
                raise RuntimeError("victim server died")
        return lines

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        self.proc.wait(10)


def check_after_restart(data_dir: Path) -> list[str]:
    """The invariants after a restart (empty when all hold)."""
    from limen.config import load_settings
    from limen.errors import KeyStoreError, LimenError, VaultErased
    from limen.runtime import open_runtime
    from limen.tamper import is_locked_down, journal_dir
    from limen.tamper.journal import read_pending

    settings = load_settings(data_dir)
    problems = []
    rt = open_runtime(settings)
    try:
        vault = rt.store.vault  # type: ignore[attr-defined]
        try:
            opened = sum(1 for _ in vault.templates())
        except (VaultErased, KeyStoreError):
            opened = 0
        if opened:
            problems.append(f"{opened} templates can still be unsealed")
        if not is_locked_down(rt.conn):
            problems.append("lockdown not in force")
        if not rt.access().load_state().lockdown:
            problems.append("access policy does not see the lockdown")
        events = list(rt.audit.records(0, ("tamper",)))  # type: ignore[attr-defined]
        incidents = [e["data"].get("incident") for e in events]
        if len(events) != 1 or len(set(incidents)) != len(incidents):
            problems.append(f"{len(events)} tamper events (expected exactly one)")
        try:
            rt.audit.verify()  # type: ignore[attr-defined]
        except LimenError as exc:
            problems.append(f"audit chain: {exc}")
        if read_pending(journal_dir(settings)) is not None:
            problems.append("intent journal still pending after recovery")
    finally:
        rt.close()
    return problems


def run_campaign(root: Path, runs: int, seed: int = 0, max_delay_s: float = 0.08) -> CampaignResult:
    """`runs` kills at uniform delays in [0, max_delay_s] after the intent is durable."""
    template = root / "template"
    prepare(template)
    rng = random.Random(seed)
    result = CampaignResult()
    server = Server()
    try:
        for run in range(runs):
            _one_run(server, root, template, run, 0.0 if run % 10 == 0 else rng.uniform(0, max_delay_s), result)
    finally:
        server.close()
    return result


def _one_run(server: Server, root: Path, template: Path, run: int, delay: float, result: CampaignResult) -> None:
    data_dir = root / f"run-{run}"
    shutil.copytree(template, data_dir)
    lines = server.kill_after_journal(data_dir, delay)
    result.runs += 1
    result.delays_ms.append(delay * 1000)
    if any(line.startswith("done") for line in lines):
        result.completed_before_kill += 1
    else:
        result.recovered += 1
    problems = check_after_restart(data_dir)
    if problems:
        result.failures.append(f"run {run} (kill at {delay * 1000:.1f} ms): {'; '.join(problems)}")
    _close_audit(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)


def _close_audit(data_dir: Path) -> None:
    from limen.audit import open_audit
    from limen.config import load_settings

    log = open_audit(load_settings(data_dir))
    log.close()
