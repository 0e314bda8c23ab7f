"""Limen: software for biometric door locks and access terminals.

The public surface is small: `Decision` (every attempt's explanation),
`load_settings`, and the packages' own recipes (`limen.vault`, `limen.access`,
`limen.audit`, `limen.pad`).
"""

from limen.config import Settings, load_settings
from limen.decision import Decision, Outcome, Reason

__all__ = ["Decision", "Outcome", "Reason", "Settings", "load_settings"]
__version__ = "0.1.0"
