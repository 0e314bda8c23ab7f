"""Limen: software for biometric door locks and access terminals.

The public surface is small: `Decision` (every attempt's explanation),
`load_settings`, and the packages' own recipes (`limen.vault`, `limen.access`,
`limen.audit`, `limen.pad`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from limen.decision import Decision, Outcome, Reason

if TYPE_CHECKING:
    from limen.config import Settings, load_settings

__all__ = ["Decision", "Outcome", "Reason", "Settings", "load_settings"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """`Settings` and `load_settings` on first use: importing `limen` (and `limen --help`) needs no pydantic."""
    if name in ("Settings", "load_settings"):
        from limen import config

        return getattr(config, name)
    raise AttributeError(f"module 'limen' has no attribute {name!r}")
