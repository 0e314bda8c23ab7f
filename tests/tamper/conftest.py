"""Tamper fixtures: a provisioned vault with templates, the audit log, a simulated door, a responder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pytest

from limen.audit import AuditLog, open_audit
from limen.bio.templates import Modality
from limen.config import Settings
from limen.door import SimulatedLock
from limen.tamper import SourceKind, TamperResponder, TamperSignal, open_responder
from limen.vault import VaultTemplateStore, open_template_store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def embedding(i: int) -> np.ndarray:
    return np.random.default_rng(i).normal(0, 0.1, 128)


def enrol(store: VaultTemplateStore, n: int = 3) -> None:
    for i in range(n):
        store.put(f"user-{i}", Modality.FACE, embedding(i))


def signal(source: str = "case", kind: SourceKind = SourceKind.CASE, reason: str = "held") -> TamperSignal:
    return TamperSignal(source, kind, reason, datetime.now(UTC))


@dataclass
class Lock:
    settings: Settings
    store: VaultTemplateStore
    audit: AuditLog
    door: SimulatedLock
    responder: TamperResponder


@pytest.fixture
def lock(settings: Settings) -> Iterator[Lock]:
    store = open_template_store(settings)
    enrol(store)
    audit = open_audit(settings)
    door = SimulatedLock(travel_s=0.0)
    responder = open_responder(settings, store=store, audit=audit, door=door)
    yield Lock(settings, store, audit, door, responder)
    responder.close()
    store.close()
    audit.close()


def unsealable_templates(settings: Settings) -> int:
    """How many templates a fresh process could open (0 after a crypto-erase)."""
    from limen.errors import KeyStoreError, VaultErased

    store = open_template_store(settings)
    try:
        return sum(1 for _ in store.vault.templates())
    except (VaultErased, KeyStoreError):
        return 0
    finally:
        store.close()
