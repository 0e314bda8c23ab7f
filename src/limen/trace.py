"""Opt-in lab tracing of intermediate data, keyed by stage.

The default sink does nothing, so stage code calls `trace.emit(...)` without
checking.  Biometric payloads (images, embeddings) are passed only when the
sink says it is a lab sink; production sinks see ids and numbers only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class TraceSink(Protocol):
    lab: bool

    def emit(self, stage: str, value: Any) -> None: ...


class NullSink:
    lab = False

    def emit(self, stage: str, value: Any) -> None:
        return None


class RecordingSink:
    """Keeps everything it is given; for the lab and for tests only."""

    lab = True

    def __init__(self) -> None:
        self.records: list[tuple[str, Any]] = []

    def emit(self, stage: str, value: Any) -> None:
        self.records.append((stage, value))


_sink: TraceSink = NullSink()


def set_sink(sink: TraceSink) -> None:
    global _sink
    _sink = sink


def emit(stage: str, value: Any | Callable[[], Any], *, biometric: bool = False) -> None:
    """Send `value` to the sink; biometric values only reach lab sinks."""
    if isinstance(_sink, NullSink) or (biometric and not _sink.lab):
        return
    _sink.emit(stage, value() if callable(value) else value)
