"""access: who may open the door, when and how often (Matter Door Lock semantics).

Public surface: the model values, `Attempt` builders, `evaluate` / `judge`
(pure), and `AccessStore` / `ensure_user` (SQLite, audited changes).
"""

from limen.access.attempt import (
    Attempt,
    CodeEntry,
    FaceEvidence,
    FingerprintEvidence,
    KeyTurn,
    PinEntry,
    RemoteCommand,
    RfidEntry,
    Source,
    code_attempt,
    face_attempt,
    key_attempt,
    keypad_entry,
    pin_attempt,
    remote_attempt,
)
from limen.access.model import (
    AccessState,
    AccessUser,
    Credential,
    CredentialRule,
    CredentialType,
    Day,
    HolidaySchedule,
    LockConfig,
    OperatingMode,
    PermissionLevel,
    UserStatus,
    UserType,
    WeekDaySchedule,
    YearDaySchedule,
)
from limen.access.offline import CodeKind
from limen.access.policy import AssuranceRule, Judgement, Update, evaluate, judge
from limen.access.store import AccessStore, ensure_user

__all__ = [
    "AccessState", "AccessStore", "AccessUser", "AssuranceRule", "Attempt", "CodeEntry", "CodeKind", "Credential",
    "CredentialRule", "CredentialType", "Day", "FaceEvidence", "FingerprintEvidence", "HolidaySchedule",
    "Judgement", "KeyTurn", "LockConfig", "OperatingMode", "PermissionLevel", "PinEntry", "RemoteCommand",
    "RfidEntry", "Source", "Update", "UserStatus", "UserType", "WeekDaySchedule", "YearDaySchedule",
    "code_attempt", "ensure_user", "evaluate", "face_attempt", "judge", "key_attempt",
    "keypad_entry", "pin_attempt", "remote_attempt",
]
