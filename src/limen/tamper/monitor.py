"""`TamperMonitor`: polls the tamper sources and hands every trip to the responder.

    monitor = TamperMonitor(responder, [GpioSwitchSource("case", SourceKind.CASE, 17), ...])
    monitor.start()                      # background thread, one tick every TAMPER_POLL_INTERVAL_S
    monitor.check_sensors(probes)        # at the start of every capture session: False = abort it

A trip of a KEY source is a notice (`on_notice`, e.g. `AccessController.key_turned`),
never a tamper: the mechanical key must keep working in lockdown.

A source trips once per tamper (it stays latched while its condition lasts).
When the tamper lockdown is lifted (`limen tamper clear`, perhaps from another
process) while a source is still in its tamper condition — the case left
open — the monitor re-arms it and it trips again at once: a new response.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from limen import thresholds as T
from limen.clock import Clock, SystemClock
from limen.tamper.binding import SensorProbe
from limen.tamper.response import ResponseReport, TamperResponder
from limen.tamper.signals import SourceKind, TamperSignal
from limen.tamper.sources import TamperSource

log = logging.getLogger(__name__)


class TamperMonitor:
    """Sources → debounced signals → `TamperResponder.respond`.  Thread-safe."""

    def __init__(self, responder: TamperResponder, sources: Iterable[TamperSource] = (), *,
                 on_notice: Callable[[TamperSignal], None] | None = None, clock: Clock | None = None,
                 interval_s: float = T.TAMPER_POLL_INTERVAL_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.responder = responder
        self.sources: list[TamperSource] = list(sources)
        self.on_notice = on_notice
        self.clock = clock or SystemClock()
        self.interval_s = interval_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lockdown_seen = False  # a tamper lockdown was in force while a source stayed held
        self.reports: list[ResponseReport] = []

    def add(self, source: TamperSource) -> None:
        with self._lock:
            self.sources.append(source)

    def poll(self, t: float | None = None) -> list[ResponseReport]:
        """One tick: poll every source at monotonic time `t`; respond to each trip in order."""
        t = self._monotonic() if t is None else t
        with self._lock:
            sources = list(self.sources)
        self._rearm_if_lifted([s for s in sources if s.kind is not SourceKind.KEY and s.held()])
        signals = []
        for source in sources:
            reason = source.poll(t)
            if reason is not None:
                signals.append(TamperSignal(source.name, source.kind, reason, self.clock.now()))
        reports = [r for r in (self.handle(s) for s in signals) if r is not None]
        if any(r.locked_down for r in reports):
            self._lockdown_seen = True
        return reports

    def _rearm_if_lifted(self, held: list[TamperSource]) -> None:
        """Re-arm the held sources once the tamper lockdown they caused has been lifted (module docstring)."""
        if not held:
            self._lockdown_seen = False
        elif self.responder.in_tamper_lockdown():
            self._lockdown_seen = True
        elif self._lockdown_seen:
            self._lockdown_seen = False
            for source in held:
                source.rearm()

    def handle(self, signal: TamperSignal) -> ResponseReport | None:
        """Respond to one signal (or pass a notice on)."""
        if not signal.erases:
            if self.on_notice is not None:
                self.on_notice(signal)
            return None
        report = self.responder.respond(signal)
        self.reports.append(report)
        if report.errors:
            log.error("tamper response %s incomplete: steps failed: %s", report.incident, sorted(report.errors))
        return report

    def check_sensors(self, probes: Iterable[SensorProbe]) -> bool:
        """Check sensor binding before a capture session; False (after responding) on any mismatch."""
        return not self.responder.check_sensors(probes)

    def start(self) -> TamperMonitor:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="limen-tamper", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def close(self) -> None:
        self.stop()
        for source in self.sources:
            source.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # the loop must survive a broken source; the response itself never raises
                log.exception("tamper monitor tick failed")
            self._stop.wait(self.interval_s)
