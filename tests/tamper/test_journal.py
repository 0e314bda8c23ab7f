from __future__ import annotations

from pathlib import Path

from limen.tamper.journal import RECORD_BYTES, UNKNOWN, Intent, IntentJournal, read_pending

INTENT = Intent("a" * 32, "case", "case", "held", "2026-03-02T09:00:00+00:00")


def test_idle_pending_idle(tmp_path: Path) -> None:
    j = IntentJournal(tmp_path / "tamper")
    assert j.pending() is None
    j.begin(INTENT)
    assert j.pending() == INTENT
    j.close()
    assert read_pending(tmp_path / "tamper") == INTENT  # survives the process
    j = IntentJournal(tmp_path / "tamper")
    j.finish()
    assert j.pending() is None
    assert (tmp_path / "tamper" / "intent").stat().st_size == RECORD_BYTES


def test_missing_journal_is_idle(tmp_path: Path) -> None:
    assert read_pending(tmp_path / "nothing") is None


def test_corrupt_or_torn_record_fails_closed(tmp_path: Path) -> None:
    j = IntentJournal(tmp_path)
    j.begin(INTENT)
    j.close()
    path = tmp_path / "intent"
    raw = bytearray(path.read_bytes())
    raw[40] ^= 0xFF
    path.write_bytes(bytes(raw))
    pending = read_pending(tmp_path)
    assert pending is not None and pending.incident == UNKNOWN
    path.write_bytes(b"LMTJ\x01")  # torn
    pending = read_pending(tmp_path)
    assert pending is not None and pending.incident == UNKNOWN


def test_long_fields_are_cut_not_refused(tmp_path: Path) -> None:
    j = IntentJournal(tmp_path)
    j.begin(Intent("b" * 32, "x" * 500, "case", "y" * 500, "2026"))
    pending = j.pending()
    assert pending is not None and len(pending.source) == 48 and len(pending.reason) == 48
