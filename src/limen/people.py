"""The registry of people known to the lock (core tables), and their consent records.

Names are for humans; every other table refers to the opaque random `id`.
No biometric data lives here.
"""

from __future__ import annotations

import secrets
import sqlite3
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from limen.db import insert_rows, table_rows, transaction
from limen.errors import BadRequest, Conflict, ConsentRequired, NotFound

BACKUP_TABLES = ("users", "consents")  # what a backup of the lock's access state carries of this registry
MAX_NAME = 64
MAX_PURPOSE = 500
MAX_RETENTION_DAYS = 3650


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    created_at: str
    created_by: str


@dataclass(frozen=True)
class Consent:
    """Explicit consent to biometric processing, recorded before any template exists."""

    purpose: str
    retention_days: int

    def validated(self) -> Consent:
        purpose = (self.purpose or "").strip()
        if not purpose:
            raise ConsentRequired("biometric enrolment needs explicit consent: give the purpose (--purpose)")
        if len(purpose) > MAX_PURPOSE or not purpose.isprintable():
            raise BadRequest("purpose", f"must be printable text of at most {MAX_PURPOSE} characters")
        if not 1 <= self.retention_days <= MAX_RETENTION_DAYS:
            raise ConsentRequired(f"consent needs a retention period of 1-{MAX_RETENTION_DAYS} days (--retention-days)")
        return Consent(purpose, self.retention_days)


def validate_name(name: str) -> str:
    """A display name: 1-64 printable characters, no control or format characters."""
    clean = unicodedata.normalize("NFC", name or "").strip()
    if not clean or len(clean) > MAX_NAME:
        raise BadRequest("name", f"must be 1-{MAX_NAME} characters")
    if any(unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp") for ch in clean):
        raise BadRequest("name", "must not contain control or format characters")
    return clean


def new_person(conn: sqlite3.Connection, name: str, actor: str, at: datetime) -> Person:
    """Insert a person (inside the caller's transaction)."""
    person = Person(id=secrets.token_hex(8), name=validate_name(name), created_at=at.isoformat(), created_by=actor)
    try:
        conn.execute("INSERT INTO users(id, name, created_at, created_by) VALUES(?, ?, ?, ?)",
                     (person.id, person.name, person.created_at, person.created_by))
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"a user named {person.name!r} already exists") from exc
    return person


def record_consent(conn: sqlite3.Connection, person: Person, modality: str, consent: Consent, actor: str,
                   at: datetime) -> int:
    """Record consent (inside the caller's transaction); return its row id (for `withdraw_failed`)."""
    cur = conn.execute(
        "INSERT INTO consents(user_id, modality, purpose, retention_days, given_at, recorded_by) "
        "VALUES(?, ?, ?, ?, ?, ?)",
        (person.id, modality, consent.purpose, consent.retention_days, at.isoformat(), actor),
    )
    return int(cur.lastrowid or 0)


def record_enrolment(conn: sqlite3.Connection, person: Person, modality: str, samples: int, actor: str,
                     at: datetime) -> int:
    """Record an enrolment (inside the caller's transaction); return its row id (for `withdraw_failed`)."""
    cur = conn.execute(
        "INSERT INTO enrolments(user_id, modality, samples, enrolled_at, enrolled_by) VALUES(?, ?, ?, ?, ?)",
        (person.id, modality, samples, at.isoformat(), actor),
    )
    return int(cur.lastrowid or 0)


def withdraw_failed(conn: sqlite3.Connection, consent_id: int, enrolment_id: int) -> None:
    """Undo the consent and enrolment rows of an enrolment whose template could not be stored."""
    with transaction(conn):
        conn.execute("DELETE FROM consents WHERE id = ?", (consent_id,))
        conn.execute("DELETE FROM enrolments WHERE id = ?", (enrolment_id,))


def unknown_user(ref: str) -> str:
    """The one message for a user nobody has (every command and page says the same)."""
    return f"no user {ref!r} on this lock (see `limen users list`)"


def find(conn: sqlite3.Connection, name_or_id: str) -> Person:
    person = lookup(conn, name_or_id)
    if person is None:
        raise NotFound(unknown_user(name_or_id))
    return person


def lookup(conn: sqlite3.Connection, name_or_id: str) -> Person | None:
    """The person named or identified by `name_or_id`, or None."""
    row = conn.execute("SELECT * FROM users WHERE name = ? OR id = ?", (name_or_id, name_or_id)).fetchone()
    return None if row is None else Person(row["id"], row["name"], row["created_at"], row["created_by"])


def ids_matching(conn: sqlite3.Connection, name_or_id: str) -> list[str]:
    """Every id whose person has that id or that name (a restore's revocation may name either)."""
    return [r[0] for r in conn.execute("SELECT id FROM users WHERE id = ? OR name = ?", (name_or_id, name_or_id))]


def name_taken(conn: sqlite3.Connection, name: str, *, other_than: str | None = None) -> bool:
    """Whether a person (other than `other_than`) already has this display name."""
    return conn.execute("SELECT 1 FROM users WHERE name = ? AND id IS NOT ?", (name, other_than)).fetchone() \
        is not None


def add_with_id(conn: sqlite3.Connection, user_id: str, name: str, actor: str, at: str) -> None:
    """Insert a person under an id the caller chose (inside the caller's transaction); `at` in ISO 8601."""
    conn.execute("INSERT INTO users(id, name, created_at, created_by) VALUES (?, ?, ?, ?)", (user_id, name, at, actor))


def rename(conn: sqlite3.Connection, user_id: str, name: str) -> None:
    """Change a person's display name (inside the caller's transaction; check `name_taken` first)."""
    conn.execute("UPDATE users SET name = ? WHERE id = ?", (name, user_id))


def remove(conn: sqlite3.Connection, user_id: str) -> int:
    """Delete a person, and everything of theirs that cascades (inside the caller's transaction); 1 or 0."""
    return int(conn.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount)


def remove_ids(conn: sqlite3.Connection, user_ids: Iterable[str]) -> int:
    """Delete these people (inside the caller's transaction); return how many were here."""
    return sum(remove(conn, uid) for uid in sorted(set(user_ids)))


def remove_everyone(conn: sqlite3.Connection) -> int:
    """Delete every person and all that cascades from them (inside the caller's transaction); return how many."""
    return int(conn.execute("DELETE FROM users").rowcount)


def everyone(conn: sqlite3.Connection) -> list[Person]:
    """Every person, by name."""
    return [Person(r["id"], r["name"], r["created_at"], r["created_by"])
            for r in conn.execute("SELECT * FROM users ORDER BY name")]


def ids(conn: sqlite3.Connection) -> list[str]:
    """Every person's id."""
    return [r[0] for r in conn.execute("SELECT id FROM users")]


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM users").fetchone()[0])


def records_held(conn: sqlite3.Connection, user_id: str) -> dict[str, int]:
    """How many consent and enrolment records the registry holds of a person (for an erasure receipt)."""
    return {"consents": int(conn.execute("SELECT COUNT(*) FROM consents WHERE user_id = ?", (user_id,)).fetchone()[0]),
            "enrolments": int(conn.execute("SELECT COUNT(*) FROM enrolments WHERE user_id = ?",
                                           (user_id,)).fetchone()[0])}


def consents_running(conn: sqlite3.Connection, modality: str, at: datetime) -> frozenset[str]:
    """People whose latest consent for `modality` still runs at `at`."""
    rows = conn.execute(
        "SELECT c.user_id, c.given_at, c.retention_days FROM consents c JOIN users u ON u.id = c.user_id "
        "WHERE c.modality = ? AND c.id = (SELECT max(id) FROM consents WHERE user_id = c.user_id "
        "AND modality = c.modality)", (modality,))
    return frozenset(r[0] for r in rows if datetime.fromisoformat(r[1]) + timedelta(days=int(r[2])) > at)


@dataclass(frozen=True)
class LatestConsent:
    """A person's latest consent for one modality they are enrolled in."""

    user_id: str
    modality: str
    given_at: str
    retention_days: int


def latest_consents_of_enrolled(conn: sqlite3.Connection) -> list[LatestConsent]:
    """For each person and modality with an enrolment, their latest consent (retention reads these)."""
    rows = conn.execute(
        """SELECT c.user_id, c.modality, c.given_at, c.retention_days
           FROM consents c
           WHERE c.id = (SELECT max(id) FROM consents WHERE user_id = c.user_id AND modality = c.modality)
             AND EXISTS (SELECT 1 FROM enrolments e WHERE e.user_id = c.user_id AND e.modality = c.modality)"""
    ).fetchall()
    return [LatestConsent(r["user_id"], r["modality"], r["given_at"], int(r["retention_days"])) for r in rows]


def forget_enrolment(conn: sqlite3.Connection, user_id: str, modality: str) -> None:
    """Delete a person's enrolment records of one modality (its reference was erased)."""
    conn.execute("DELETE FROM enrolments WHERE user_id = ? AND modality = ?", (user_id, modality))


def forget_enrolments(conn: sqlite3.Connection, user_id: str) -> None:
    """Delete every enrolment record of a person (all their references were erased; they stay a person)."""
    conn.execute("DELETE FROM enrolments WHERE user_id = ?", (user_id,))


def enrolment_rows(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every enrolment row, whole (a template backup carries them)."""
    return table_rows(conn, "enrolments")


def restore_enrolments(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert the enrolment rows of references a restore brought back (one transaction)."""
    with transaction(conn):
        for row in rows:
            conn.execute("INSERT INTO enrolments(user_id, modality, samples, enrolled_at, enrolled_by) "
                         "VALUES (?, ?, ?, ?, ?)", (str(row["user_id"]), str(row["modality"]), int(row["samples"]),
                                                   str(row["enrolled_at"]), str(row["enrolled_by"])))


def backup_rows(conn: sqlite3.Connection) -> dict[str, list[sqlite3.Row]]:
    """The registry's `BACKUP_TABLES`, whole."""
    return {table: table_rows(conn, table) for table in BACKUP_TABLES}


def restore_rows(conn: sqlite3.Connection, tables: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Insert a backup's rows of `BACKUP_TABLES` (inside the caller's transaction, after `remove_everyone`)."""
    return {table: insert_rows(conn, table, tables.get(table, [])) for table in BACKUP_TABLES}


def by_id(conn: sqlite3.Connection, user_id: str) -> Person | None:
    row = conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
    return None if row is None else Person(row["id"], row["name"], row["created_at"], row["created_by"])


@dataclass(frozen=True)
class EnrolmentRecord:
    """One biometric enrolment of a person (no biometric data: what, how many samples, when, by whom)."""

    modality: str
    samples: int
    enrolled_at: str


@dataclass(frozen=True)
class ConsentRecord:
    modality: str
    purpose: str
    retention_days: int
    given_at: str


def names(conn: sqlite3.Connection) -> dict[str, str]:
    """Every person's display name by id."""
    return {row["id"]: row["name"] for row in conn.execute("SELECT id, name FROM users")}


def enrolled_ids(conn: sqlite3.Connection) -> set[str]:
    """The ids of people with at least one biometric enrolment."""
    return {row[0] for row in conn.execute("SELECT DISTINCT user_id FROM enrolments")}


def enrolments_of(conn: sqlite3.Connection, user_id: str) -> list[EnrolmentRecord]:
    """A person's enrolments, oldest first."""
    rows = conn.execute("SELECT modality, samples, enrolled_at FROM enrolments WHERE user_id = ? ORDER BY id",
                        (user_id,))
    return [EnrolmentRecord(r["modality"], r["samples"], r["enrolled_at"]) for r in rows]


def consents_of(conn: sqlite3.Connection, user_id: str) -> list[ConsentRecord]:
    """A person's consent records, oldest first."""
    rows = conn.execute("SELECT modality, purpose, retention_days, given_at FROM consents WHERE user_id = ? "
                        "ORDER BY id", (user_id,))
    return [ConsentRecord(r["modality"], r["purpose"], r["retention_days"], r["given_at"]) for r in rows]


def held_about(conn: sqlite3.Connection, user_id: str) -> dict[str, list[dict[str, Any]]]:
    """A person's consent and enrolment records, whole, with who recorded them (`privacy export`)."""
    return {
        "consents": [dict(r) for r in conn.execute(
            "SELECT modality, purpose, retention_days, given_at, recorded_by FROM consents WHERE user_id = ? "
            "ORDER BY id", (user_id,))],
        "enrolments": [dict(r) for r in conn.execute(
            "SELECT modality, samples, enrolled_at, enrolled_by FROM enrolments WHERE user_id = ? ORDER BY id",
            (user_id,))],
    }


def list_people(conn: sqlite3.Connection) -> list[dict[str, object]]:
    rows = conn.execute(
        """SELECT u.id, u.name, u.created_at, u.created_by,
                  (SELECT group_concat(DISTINCT e.modality) FROM enrolments e WHERE e.user_id = u.id) AS modalities,
                  (SELECT c.purpose FROM consents c WHERE c.user_id = u.id ORDER BY c.id DESC LIMIT 1) AS purpose,
                  (SELECT c.retention_days FROM consents c WHERE c.user_id = u.id ORDER BY c.id DESC LIMIT 1)
                      AS retention_days
           FROM users u ORDER BY u.name"""
    ).fetchall()
    return [dict(r) for r in rows]


def delete(conn: sqlite3.Connection, person: Person) -> None:
    with transaction(conn):
        conn.execute("DELETE FROM users WHERE id = ?", (person.id,))
