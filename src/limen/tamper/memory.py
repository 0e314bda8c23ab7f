"""Best-effort scrubbing of decrypted templates and keys from process memory.

What this does: overwrites every `bytearray`, writable `memoryview` and
writable numpy array it is given (and those inside dicts, lists and sets),
calls `wipe()`/`zeroize()`/`clear()` on holder objects, drops the references
and runs the garbage collector (which frees unreachable objects, but does not
overwrite them).  Holders can register themselves once with
`register(obj)` (kept as weak references) so the response finds them.

What Python cannot promise: immutable `bytes`/`str` copies cannot be
overwritten; the allocator may have left earlier copies in freed memory;
library buffers (OpenSSL, numpy temporaries, dlib) are out of reach; pages
may have been swapped.  The guarantee that matters is the crypto-erase: once
the root key is destroyed, any sealed copy left on disk or in memory is
useless, and the transform secret the vault holds is a `bytearray` it wipes.
"""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import Iterable
from typing import Any

_HOLDERS: weakref.WeakSet[Any] = weakref.WeakSet()


def register(holder: Any) -> None:
    """Have every tamper response scrub `holder` (an object with `wipe`, `zeroize` or `clear`)."""
    _HOLDERS.add(holder)


def scrub(targets: Iterable[Any] = (), collect: bool = True) -> int:
    """Overwrite and drop `targets` and every registered holder; return how many buffers were zeroed.

    `collect=False` skips the garbage collection (tens of ms in a loaded
    process); the response runs it last, after the door and the evidence.
    """
    seen: set[int] = set()
    count = sum(_scrub(t, seen) for t in list(targets))
    count += sum(_scrub(h, seen) for h in list(_HOLDERS))
    if collect:
        gc.collect()
    return count


def _scrub(obj: Any, seen: set[int]) -> int:
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, bytearray):
        obj[:] = bytes(len(obj))
        return 1
    if isinstance(obj, memoryview):
        if obj.readonly:
            return 0
        obj.cast("B")[:] = bytes(obj.nbytes)
        return 1
    np = sys.modules.get("numpy")  # not imported: no array can exist (`limen status` never loads NumPy)
    if np is not None and isinstance(obj, np.ndarray):
        if not obj.flags.writeable:
            return 0
        obj.fill(0)
        return 1
    if isinstance(obj, dict):
        n = sum(_scrub(v, seen) for v in list(obj.values()))
        obj.clear()
        return n
    if isinstance(obj, list | set):
        n = sum(_scrub(v, seen) for v in list(obj))
        obj.clear()
        return n
    for name in ("wipe", "zeroize", "clear"):
        method = getattr(obj, name, None)
        if callable(method):
            method()
            return 1
    return 0
