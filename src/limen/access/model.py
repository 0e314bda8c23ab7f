"""The access model, shaped like the Matter (CSA) Door Lock cluster.

Plain frozen values: users (Matter's index, status, type and credential rule,
plus a permission level), credentials, week-day / year-day / holiday schedules,
the lock's counters and configuration, and `AccessState`, everything
`policy.evaluate` needs to decide.  Secrets (PIN hashes, offline-code secrets)
are excluded from `repr`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import IntFlag, StrEnum

from limen import thresholds as T
from limen.access.pins import PinHasher
from limen.tamper.lockdown import LockdownCause


class UserStatus(StrEnum):
    """Matter UserStatusEnum."""

    AVAILABLE = "available"
    ENABLED = "enabled"        # OccupiedEnabled
    DISABLED = "disabled"      # OccupiedDisabled


class UserType(StrEnum):
    """Matter UserTypeEnum."""

    UNRESTRICTED = "unrestricted"
    YEAR_DAY_SCHEDULE = "year_day_schedule"
    WEEK_DAY_SCHEDULE = "week_day_schedule"
    PROGRAMMING = "programming"
    NON_ACCESS = "non_access"
    FORCED = "forced"                    # duress: opens and raises a silent alarm
    DISPOSABLE = "disposable"            # one use
    EXPIRING = "expiring"                # valid for a while after first use
    SCHEDULE_RESTRICTED = "schedule_restricted"
    REMOTE_ONLY = "remote_only"


class CredentialRule(StrEnum):
    """Matter CredentialRuleEnum: how many distinct credential types one opening needs."""

    SINGLE = "single"
    DUAL = "dual"
    TRI = "tri"

    @property
    def factors(self) -> int:
        return {"single": 1, "dual": 2, "tri": 3}[self.value]


class CredentialType(StrEnum):
    PIN = "pin"
    RFID = "rfid"
    FINGERPRINT = "fingerprint"
    FACE = "face"
    MECHANICAL_KEY = "mechanical_key"
    OFFLINE_CODE = "offline_code"        # the secret an owner's app derives offline codes from


KEYPAD_TYPES = frozenset({CredentialType.PIN, CredentialType.RFID, CredentialType.OFFLINE_CODE})
BIOMETRIC_TYPES = frozenset({CredentialType.FACE, CredentialType.FINGERPRINT})


class PermissionLevel(StrEnum):
    """Who may change the lock: owners and administrators program it, members and guests only open."""

    OWNER = "owner"
    ADMINISTRATOR = "administrator"
    MEMBER = "member"
    GUEST = "guest"

    @property
    def programs(self) -> bool:
        return self in (PermissionLevel.OWNER, PermissionLevel.ADMINISTRATOR)


class OperatingMode(StrEnum):
    """Matter OperatingModeEnum."""

    NORMAL = "normal"                    # every interface enabled
    VACATION = "vacation"                # only remote interaction
    PRIVACY = "privacy"                  # no external interaction (mechanical key excepted)
    NO_REMOTE_LOCK_UNLOCK = "no_remote_lock_unlock"
    PASSAGE = "passage"                  # opens at will


class Day(IntFlag):
    """Matter DaysMaskMap (bit 0 is Sunday)."""

    SUNDAY = 1
    MONDAY = 2
    TUESDAY = 4
    WEDNESDAY = 8
    THURSDAY = 16
    FRIDAY = 32
    SATURDAY = 64


ALL_DAYS = Day(127)
DAY_NAMES = {d.name.lower()[:3]: d for d in Day}  # type: ignore[union-attr]


@dataclass(frozen=True)
class AccessUser:
    user_id: str
    index: int                                   # Matter UserIndex, 1..MAX_USERS
    name: str
    status: UserStatus = UserStatus.ENABLED
    user_type: UserType = UserType.UNRESTRICTED
    credential_rule: CredentialRule = CredentialRule.SINGLE
    permission: PermissionLevel = PermissionLevel.MEMBER
    unique_id: str | None = None                 # Matter UserUniqueID (integrator's id)
    pin_max_age_days: int | None = None          # owner may require regular PIN changes
    last_pin_at: datetime | None = None          # last opening with this user's PIN (72 h rule)
    implicit: bool = False                       # face-enrolled user without an access row


@dataclass(frozen=True)
class Credential:
    id: str
    user_id: str
    type: CredentialType
    index: int
    secret: bytes = field(default=b"", repr=False)   # PIN/RFID hash, offline-code secret
    pin_length: int | None = None
    revoked: bool = False
    backup: bool = False                         # backup PIN: limited offline uses
    created_at: datetime | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    max_uses: int | None = None
    uses: int = 0
    expire_after_first_use_s: int | None = None
    first_used_at: datetime | None = None
    offline_uses: int = 0
    offline_max_uses: int | None = None


@dataclass(frozen=True)
class WeekDaySchedule:
    """Access on the days in `days` between `start` and `end` (local time, end exclusive)."""

    user_id: str
    index: int
    days: Day
    start: time
    end: time


@dataclass(frozen=True)
class YearDaySchedule:
    """Access between two instants (end exclusive)."""

    user_id: str
    index: int
    start: datetime
    end: datetime


@dataclass(frozen=True)
class HolidaySchedule:
    """Between two instants the lock runs in `mode` instead of its configured one."""

    index: int
    start: datetime
    end: datetime
    mode: OperatingMode


@dataclass(frozen=True)
class LockoutState:
    """Keypad lockout (Matter semantics) and the separate biometric failure count."""

    wrong_code_count: int = 0
    lockouts: int = 0                            # consecutive lockouts, for escalation
    locked_until: datetime | None = None
    bio_fail_count: int = 0
    window_count: int = 0                        # wrong entries in the window from `window_start` (no success
    window_start: datetime | None = None         # resets them: a credential holder cannot guess without end)


@dataclass(frozen=True)
class LockConfig:
    wrong_code_entry_limit: int = T.WRONG_CODE_ENTRY_LIMIT
    user_code_temporary_disable_time_s: int = T.USER_CODE_TEMPORARY_DISABLE_TIME_S
    lockout_escalation_factor: int = T.LOCKOUT_ESCALATION_FACTOR
    lockout_max_disable_s: int = T.LOCKOUT_MAX_DISABLE_S
    bio_failure_limit: int = T.BIO_FAILURE_LIMIT
    strong_auth_max_age_h: int = T.STRONG_AUTH_MAX_AGE_H
    require_pin_for_remote: bool = True          # RequirePINforRemoteOperation
    mechanical_key_offline_limit: int = T.MECHANICAL_KEY_OFFLINE_LIMIT
    auto_relock_time_s: int = T.AUTO_RELOCK_TIME_S
    timezone: str = "UTC"                        # week-day schedules are in local time


@dataclass(frozen=True)
class CodeUse:
    code_id: str
    at: datetime


@dataclass(frozen=True)
class AccessState:
    """Everything `policy.evaluate` reads.  Built by `AccessStore.load_state`."""

    users: Mapping[str, AccessUser] = field(default_factory=dict)
    credentials: tuple[Credential, ...] = ()
    week_days: tuple[WeekDaySchedule, ...] = ()
    year_days: tuple[YearDaySchedule, ...] = ()
    holidays: tuple[HolidaySchedule, ...] = ()
    mode: OperatingMode = OperatingMode.NORMAL
    lockout: LockoutState = field(default_factory=LockoutState)
    config: LockConfig = field(default_factory=LockConfig)
    pin_salt: bytes = field(default=b"", repr=False)
    pin_hasher: PinHasher | None = field(default=None, repr=False, compare=False)  # salts + pepper (pins.py)
    online: bool = True
    lockdown: bool = False
    lockdown_cause: LockdownCause | None = None  # why (None with `lockdown`: a tamper's)
    owner_reauth_required: bool = False
    key_offline_uses: int = 0
    code_uses: tuple[CodeUse, ...] = ()
    revoked_codes: frozenset[str] = frozenset()

    def credentials_of(self, user_id: str, ctype: CredentialType | None = None) -> list[Credential]:
        return [c for c in self.credentials if c.user_id == user_id and (ctype is None or c.type is ctype)]
