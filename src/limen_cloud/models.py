"""The cloud's tables (SQLAlchemy 2); schema changes go through Alembic (`limen_cloud/migrations`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Owner(Base):
    __tablename__ = "owners"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))  # Argon2id (argon2-cffi's encoded form)
    created_at: Mapped[datetime]
    alert_urls: Mapped[str | None] = mapped_column(Text, default=None)  # JSON list of apprise URLs (hold tokens)
    totp_secret: Mapped[str | None] = mapped_column(String(64), default=None)  # base32; None: TOTP not enrolled
    totp_step: Mapped[int | None] = mapped_column(Integer, default=None)  # last accepted time step (no replay)
    webhook_url: Mapped[str | None] = mapped_column(String(500), default=None)  # the community security webhook
    webhook_secret: Mapped[str | None] = mapped_column(String(64), default=None)  # its HMAC-SHA256 key (hex)


class Invite(Base):
    """A one-time token (only its SHA-256 is kept): a sign-up invite (`limen-cloud invite` or the first start's setup
    token), or with `owner_id` the operator's password reset of that account (`limen-cloud reset-password`)."""

    __tablename__ = "invites"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)  # set once: the token is spent
    # a password reset of this account (None: a sign-up invite); never accepted as the other kind
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), default=None,
                                                 index=True)
    clear_totp: Mapped[bool] = mapped_column(default=False, server_default=false())  # the reset also removes TOTP


class Session(Base):
    __tablename__ = "sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the bearer token
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime]


class Lock(Base):
    __tablename__ = "locks"

    lock_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))  # None: unclaimed
    name: Mapped[str] = mapped_column(String(100))
    claim_hash: Mapped[str | None] = mapped_column(String(64), default=None)  # what the lock says its code hashes to
    audit_keys: Mapped[str | None] = mapped_column(Text, default=None)  # JSON {key id: base64 Ed25519 public key}
    head_count: Mapped[int] = mapped_column(Integer, default=0)   # records held (indices 0..count-1)
    head_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    reported_count: Mapped[int] = mapped_column(Integer, default=0)  # what the lock last said it holds
    last_seen: Mapped[datetime | None] = mapped_column(default=None)
    # the owner (stepped up) marked the lock replaced: its chain was archived and the head reset; cleared when the
    # new chain's first record is taken (`limen_cloud.evidence.mark_replaced`)
    replaced_at: Mapped[datetime | None] = mapped_column(default=None)


class Record(Base):
    __tablename__ = "records"
    __table_args__ = (UniqueConstraint("lock_id", "idx"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lock_id: Mapped[str] = mapped_column(ForeignKey("locks.lock_id", ondelete="CASCADE"), index=True)
    idx: Mapped[int]
    hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(40))
    at: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)  # the chained record as the lock wrote it (canonical JSON)


class ArchivedChain(Base):
    """A lock's audit chain as the cloud held it when the owner marked the lock replaced (head, pinned keys)."""

    __tablename__ = "archived_chains"

    id: Mapped[int] = mapped_column(primary_key=True)
    lock_id: Mapped[str] = mapped_column(ForeignKey("locks.lock_id", ondelete="CASCADE"), index=True)
    replaced_at: Mapped[datetime]
    marked_by: Mapped[int | None] = mapped_column(ForeignKey("owners.id", ondelete="SET NULL"), default=None)
    head_count: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    reported_count: Mapped[int] = mapped_column(Integer)
    audit_keys: Mapped[str | None] = mapped_column(Text, default=None)  # the keys pinned for that chain
    # the owner-signed statement that authorised the mark (`limen_cloud.statements`; None: archived before
    # statements were required), the paired device that signed it and its counter (replays are refused)
    statement: Mapped[str | None] = mapped_column(Text, default=None)
    signed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    statement_counter: Mapped[int | None] = mapped_column(BigInteger, default=None)


class ArchivedRecord(Base):
    """A record of an archived chain, as it was held (a person's erasure redacts it like a live one)."""

    __tablename__ = "archived_records"
    __table_args__ = (UniqueConstraint("chain_id", "idx"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chain_id: Mapped[int] = mapped_column(ForeignKey("archived_chains.id", ondelete="CASCADE"), index=True)
    lock_id: Mapped[str] = mapped_column(ForeignKey("locks.lock_id", ondelete="CASCADE"), index=True)
    idx: Mapped[int]
    hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(40))
    at: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)


class Alarm(Base):
    __tablename__ = "alarms"
    __table_args__ = (Index("ix_alarms_lock_record_hash", "lock_id", "record_hash"),
                      Index("ix_alarms_lock_index", "lock_id", "lock_index"))

    id: Mapped[int] = mapped_column(primary_key=True)
    lock_id: Mapped[str] = mapped_column(ForeignKey("locks.lock_id", ondelete="CASCADE"), index=True)
    rule: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(String(400))
    raised_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    notified_at: Mapped[datetime | None] = mapped_column(default=None)  # delivered to every channel of the owner
    delivery_error: Mapped[str | None] = mapped_column(String(200), default=None)  # last failure (retried)
    webhook_at: Mapped[datetime | None] = mapped_column(default=None)  # the community webhook took it (2xx)
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0)  # bounded by CLOUD_WEBHOOK_MAX_ATTEMPTS
    webhook_next_at: Mapped[datetime | None] = mapped_column(default=None)  # next try after a failure (backoff)
    webhook_error: Mapped[str | None] = mapped_column(String(200), default=None)
    # read from a lock's ALARM record while its chain is in conflict (not taken into the verified chain:
    # `limen_cloud.evidence`); `record_hash` is that record's hash, so a record resent raises nothing again
    unverified: Mapped[bool] = mapped_column(default=False, server_default=false())
    record_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    # read from the lock's ALARM record taken into the verified chain: its index in the current chain (cleared when
    # the lock is marked replaced) and time (the lock's clock, as it wrote it; `raised_at` is when the cloud received
    # it), and the time of the lock's own acknowledgement of it (a SYSTEM "alarm acknowledged" record naming that
    # index; shown only: it never sets `acknowledged_at`, which only the owner's acknowledgement in the cloud sets)
    lock_index: Mapped[int | None] = mapped_column(Integer, default=None)
    lock_at: Mapped[str | None] = mapped_column(String(40), default=None)
    lock_acknowledged_at: Mapped[str | None] = mapped_column(String(40), default=None)


class FormerDestination(Base):
    """An alarm destination removed or replaced (an apprise channel, the community webhook, a browser), kept only to
    tell it of that change: the account alarm raised for it (`alarm_id`: `alarm_destination_removed`, or
    `alarm_destination_added` for a replacement) is sent there too, once — a thief with the owner's session, password
    and code who replaces or removes the owner's destinations is heard by them (`notify.AlarmNotifier.deliver_former`).
    `target` holds what reaching it takes (URL with its tokens, the webhook's secret, the browser's keys: JSON, never
    logged) and is cleared once delivered or given up."""

    __tablename__ = "former_destinations"

    id: Mapped[int] = mapped_column(primary_key=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # "apprise", "webhook" or "push"
    what: Mapped[str] = mapped_column(String(200))  # its channel id, host or browser: what logs name
    target: Mapped[str | None] = mapped_column(Text, default=None)  # JSON; None once delivered or given up
    sent_at: Mapped[datetime | None] = mapped_column(default=None)  # it took the alarm
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # bounded by CLOUD_WEBHOOK_MAX_ATTEMPTS
    next_at: Mapped[datetime | None] = mapped_column(default=None)  # next try after a failure (backoff)
    error: Mapped[str | None] = mapped_column(String(200), default=None)  # a status or an error kind only


class CommandLog(Base):
    __tablename__ = "commands"

    id: Mapped[int] = mapped_column(primary_key=True)
    lock_id: Mapped[str] = mapped_column(ForeignKey("locks.lock_id", ondelete="CASCADE"), index=True)
    payload: Mapped[str] = mapped_column(Text)  # the signed wire form, relayed as received
    sent_at: Mapped[datetime]
    result: Mapped[str | None] = mapped_column(Text, default=None)  # the lock's Outcome (JSON)


class Backup(Base):
    """An end-to-end-encrypted backup a lock uploaded: ciphertext the cloud cannot read (limen.link.backup)."""

    __tablename__ = "backups"
    __table_args__ = (UniqueConstraint("lock_id", "counter"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lock_id: Mapped[str] = mapped_column(ForeignKey("locks.lock_id", ondelete="CASCADE"), index=True)
    counter: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    created_at: Mapped[str] = mapped_column(String(40))  # from the authenticated header (the lock's clock)
    received_at: Mapped[datetime]
    blob: Mapped[bytes] = mapped_column(LargeBinary)


class Erasure(Base):
    """A completed erasure: the lock's signed receipt and the cloud's signed part (kept after a decommission)."""

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(primary_key=True)
    lock_id: Mapped[str] = mapped_column(String(64), index=True)  # no foreign key: outlives the lock's rows
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    user_ref: Mapped[str] = mapped_column(String(64))  # the person's id on the lock, or "*" for the lock
    scope: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime]
    receipt: Mapped[str] = mapped_column(Text)  # {"lock": <lock-signed receipt>, "cloud": <cloud-signed part>}


class PushSubscription(Base):
    """One browser of an owner that receives alarms by web push (RFC 8030/8291/8292; the endpoint holds a
    capability: never logged or shown).  `cursor` is the last alarm id handled for it: alarms after it are pushed
    in order; a subscription starts at the newest alarm when it is made (no flood of old ones)."""

    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    endpoint: Mapped[str] = mapped_column(String(1000), unique=True)  # the push service's URL for this browser
    p256dh: Mapped[str] = mapped_column(String(100))  # the browser's P-256 public key (base64url, uncompressed)
    auth: Mapped[str] = mapped_column(String(40))  # its 16-byte authentication secret (base64url)
    label: Mapped[str] = mapped_column(String(100))  # what the owner called this browser
    created_at: Mapped[datetime]
    cursor: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # failures on the alarm after the cursor
    next_at: Mapped[datetime | None] = mapped_column(default=None)  # next try after a failure (backoff)
    last_error: Mapped[str | None] = mapped_column(String(200), default=None)  # a status or an error kind only
    last_ok_at: Mapped[datetime | None] = mapped_column(default=None)


class CommandSource(Base):
    """An address (`api.client_key`) the owner claimed a lock or sent a command from (`limen_cloud.sources`)."""

    __tablename__ = "command_sources"
    __table_args__ = (UniqueConstraint("owner_id", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(64))
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
