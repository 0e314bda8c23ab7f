"""What a tamper source reports: a `TamperSignal` (which source, what kind, why, when)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class SourceKind(StrEnum):
    CASE = "case"                  # case-open switch
    ESCUTCHEON = "escutcheon"      # outer plate pried off
    SHOCK = "shock"                # shock / vibration sensor
    SUPPLY = "supply"              # supply voltage out of range (brown-out, short, injection)
    SENSOR = "sensor"              # camera or fingerprint sensor gone or swapped (sensor binding)
    WATCHDOG = "watchdog"          # a lock process went silent
    KEY = "key"                    # key inserted: a notice, not a tamper (the mechanical key must work)
    SIMULATED = "simulated"        # `limen tamper simulate` and tests
    UNKNOWN = "unknown"            # recovered from an unreadable journal record: origin lost


class Sensitivity(StrEnum):
    """Named operating points of a source (numbers in `limen.thresholds`, section "tamper").

    HIGH trips sooner and on less (more false alarms), LOW later and on more.
    """

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


@dataclass(frozen=True)
class TamperSignal:
    """One debounced trip of one source.  `detail` holds ids and numbers only, never secrets."""

    source: str                    # the source's name ("case", "camera", "watchdog:capture", …)
    kind: SourceKind
    reason: str                    # why it tripped ("held", "flapping", "pulses", "swapped", "absent", …)
    at: datetime
    detail: dict[str, str | float | int | bool] = field(default_factory=dict)

    @property
    def erases(self) -> bool:
        """Whether this signal starts the tamper response (a key insertion does not)."""
        return self.kind is not SourceKind.KEY
