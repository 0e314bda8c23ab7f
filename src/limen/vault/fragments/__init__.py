"""k-of-n fragments of sealed records across independent storage locations (AONT-RS)."""

from limen.vault.fragments.aont_rs import join, split
from limen.vault.fragments.locations import DirectoryLocation, FragmentLocation

__all__ = ["DirectoryLocation", "FragmentLocation", "join", "split"]
