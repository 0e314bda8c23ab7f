"""Fingerprint references at rest: ISO records sealed under the vault, one file per person.

Each enrolled finger's impressions (ISO/IEC 19794-2 records) are sealed
together with the vault's `SecretBox` (AES-256-GCM under the vault's secrets
key), written atomically 0600 under `<data dir>/fingerprints/`: finger
position 0 (unknown, ISO) as ``<user id>.fmr`` under the label
``finger:<user id>``, positions 1–10 (ISO: right thumb … left little) as
``<user id>.<position>.fmr`` under ``finger:<user id>:<position>``.  A person
may have several fingers enrolled; a probe is compared with all of them.
Beside each file a plaintext marker (`versions`: ``… .fmr.extractor``) records
the oldest extractor version among its impressions (none: an unknown one),
so `limen status` can advise re-enrolling without unsealing anything.
Raw minutiae never persist unencrypted; they exist in memory only while a
probe is compared.  A crypto-erase of the vault makes every file unreadable at
once (its key is gone); `delete` removes every file of a person (erasure on
user removal and on consent expiry).  For a backup the owner opted in to,
`export_for_backup` unseals every finger's records into wipeable buffers for
the backup sealer and `import_from_backup` seals them under *this* lock's box.  A missing vault is
an error (fail closed), never a plaintext fallback.

Where the vault's records are fragmented (`fragments_n`/`fragments_k`/`fragment_dirs`), a finger's sealed file
goes through the same AONT-RS split (`limen.vault.records.FragmentSet`): n shares, any k of which rebuild it,
one in `<fragment dir>/fingerprints/` of each module, and the file under `fingerprints/` keeps only the shares'
index (generation name, k, n, SHA-256 of each share; no ciphertext).  A write puts every share before the index
(all modules needed, as for faces) and shreds the earlier generation after; removing a finger removes its index
file, then its shares (leftovers of an interrupted write with them); the vault's crypto-erase empties the
shares with the faces'.  Fewer than k intact shares is `FragmentError` (a `VaultError`: the door refuses, as
for an erased vault).  A finger sealed whole before fragments were configured is read as it is and split at its
next write.

`ReferenceIndex` is the door's 1:N index over these files, kept in memory between attempts (as the vault's
face index is): built at the first search, and at every search checked against the folder (each file's
inode, size and times) and the box (a sealed canary still opens), so a finger enrolled, replaced or removed —
by this process or another — is re-read or dropped before the search, a crypto-erase or a new key drops the
whole index, and every write through this module (`put`, `delete`, `erase_references`,
`import_from_backup`) drops that person's entries at once.  With fragments, a held finger's shares are
checked by metadata too (n `stat`s per finger and search), so shares removed or rewritten by another process
(below k: the search refuses; k or more: re-read, still matching) are seen at the next search.  `wipe` (a
tamper response's memory scrub, where the runtime registers it) zeroes the prepared minutiae it held.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import sqlite3
import struct
import threading
import weakref
from pathlib import Path

import numpy as np

from limen import thresholds
from limen.bio.finger import iso, matcher, versions
from limen.bio.finger.index import EdgeIndex, Hit, edge_keys
from limen.bio.finger.template import FingerTemplate
from limen.errors import (
    BadRequest,
    ConfigError,
    FragmentError,
    InvalidSealedTemplate,
    NotFound,
    VaultErased,
    VaultError,
)
from limen.fsio import atomic_write
from limen.vault.files import shred, zero_out
from limen.vault.records import FINGERPRINTS, FragmentSet, side_fragments
from limen.vault.secrets import SecretBox, box_for

_USER_ID = re.compile(r"^[0-9a-f]{1,64}$")
_FILE = versions.REFERENCE_FILE

FINGER_NAMES = ("unknown finger", "right thumb", "right index", "right middle", "right ring", "right little",
                "left thumb", "left index", "left middle", "left ring", "left little")  # ISO/IEC 19794-2 positions


_SHARES = b"LFS1\n"    # an index file: the sealed finger is in the fragment folders (a sealed file starts 0x01)
_ShareStat = tuple[object, ...]  # each module's share metadata (see `FingerReferences._share_stat`)


def _label(user_id: str, position: int) -> str:
    return f"finger:{user_id}" if position == 0 else f"finger:{user_id}:{position}"


def _stem(user_id: str, position: int) -> str:
    return FragmentSet.stem(user_id, f"finger:{position}")


def _fragments(folder: Path) -> FragmentSet | None:
    """The fingerprint shares' set of the lock whose references are in `folder` (None: not fragmented)."""
    return side_fragments(folder.parent, FINGERPRINTS)


def references_folder(data_dir: Path) -> Path:
    return data_dir / versions.FOLDER


def _replace_wiping(path: Path, data: bytes) -> None:
    """`atomic_write`, then the replaced file's old contents overwritten with zeros through a descriptor opened
    before the rename: a re-enrolled finger's earlier sealed records do not stay readable in free blocks (a
    rename alone frees them as they are; the flash's own remapping is beyond any file system call)."""
    try:
        old: int | None = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)   # a planted link is replaced, not followed
    except FileNotFoundError:
        old = None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        old = None
    try:
        atomic_write(path, data)
        if old is not None:
            zero_out(old)
    finally:
        if old is not None:
            os.close(old)


def erase_references(folder: Path, user_id: str) -> int:
    """Remove every finger of `user_id` from `folder` (no vault needed: erasure works after a zeroize too)."""
    if not _USER_ID.match(user_id) or not folder.is_dir():
        return 0
    _changed(folder, user_id)
    removed = 0
    for path in folder.glob(f"{user_id}*.fmr"):
        m = _FILE.match(path.name)
        if m and m.group(1) == user_id:
            shred(path)             # zeros over the sealed records, then unlinked (not left in free blocks)
            removed += 1
    for marker in folder.glob(f"{user_id}*.fmr.extractor"):    # with any a crash left without its finger
        m = _FILE.match(marker.name.removesuffix(".extractor"))
        if m and m.group(1) == user_id:
            marker.unlink(missing_ok=True)
    fragments = _fragments(folder)
    if fragments is not None:       # every position's shares, those of an interrupted write too
        fragments.delete_stems({_stem(user_id, position) for position in range(len(FINGER_NAMES))})
    return removed


def open_references(conn: sqlite3.Connection, data_dir: Path) -> FingerReferences:
    """The references of the lock whose vault is open over `conn`; `ConfigError` without an open vault."""
    box = box_for(conn)
    if box is None:
        raise ConfigError("fingerprints need the template vault; it is not open")
    return FingerReferences(references_folder(data_dir), box)


class FingerReferences:
    """Sealed fingerprint references of every enrolled person (see the module docstring)."""

    def __init__(self, folder: Path, box: SecretBox) -> None:
        self.folder = folder
        self._box = box
        self._fragments = _fragments(folder)   # the vault's fragment modules, when it has them

    def _store(self, user_id: str, position: int, sealed: bytes) -> None:
        """Write a finger's sealed file, or its shares and then their index (see the module docstring)."""
        path = self._path(user_id, position)
        if self._fragments is None:
            _replace_wiping(path, sealed)
            return
        stem = _stem(user_id, position)
        index = self._fragments.write(stem, sealed)
        _replace_wiping(path, _SHARES + json.dumps(index).encode())
        self._fragments.delete_stems({stem}, keep=index["name"])

    def _sealed(self, user_id: str, position: int) -> bytes:
        """A finger's sealed bytes, from its file or its shares: `FragmentError` below k intact shares, or for
        shares without fragment folders configured."""
        raw = self._path(user_id, position).read_bytes()
        index = self._index_of(raw, user_id, position)
        if index is None:
            return raw
        assert self._fragments is not None
        return self._fragments.read(index)

    def _index_of(self, raw: bytes, user_id: str, position: int) -> dict | None:
        """The shares' index a finger's file holds (None: the file is the sealed finger itself)."""
        if not raw.startswith(_SHARES):
            return None
        if self._fragments is None:
            raise FragmentError("this finger is split across fragment folders, and none are configured")
        try:
            index = json.loads(raw[len(_SHARES):])
            name = index["name"]
            if not isinstance(name, str) or not name.startswith(_stem(user_id, position) + "."):
                raise ValueError(name)
        except (ValueError, KeyError, TypeError):
            raise FragmentError("a finger's fragment index is damaged") from None
        return index

    def _shares(self, user_id: str, position: int) -> tuple[str | None, _ShareStat]:
        """The generation and metadata of a finger's shares ((None, ()) when sealed whole), for `ReferenceIndex`
        to take before unsealing: shares changed after that are re-read at the next search."""
        try:
            raw = self._path(user_id, position).read_bytes()
        except FileNotFoundError:
            return None, ()
        index = self._index_of(raw, user_id, position)
        name = None if index is None else index["name"]
        return name, self._share_stat(name)

    def _share_stat(self, name: str | None) -> _ShareStat:
        """What `ReferenceIndex` compares to see shares of generation `name` removed or rewritten."""
        if name is None or self._fragments is None:
            return ()
        out: list[object] = []
        for location in self._fragments.locations:
            stat = getattr(location, "stat", None)
            out.append(stat(name) if stat is not None else location.get(name))
        return tuple(out)

    def _path(self, user_id: str, position: int = 0) -> Path:
        if not _USER_ID.match(user_id):
            raise BadRequest("user_id", "not a Limen user id")
        if not 0 <= position < len(FINGER_NAMES):
            raise BadRequest("finger", f"a finger position 0-{len(FINGER_NAMES) - 1} (ISO/IEC 19794-2)")
        return self.folder / (f"{user_id}.fmr" if position == 0 else f"{user_id}.{position}.fmr")

    def put(self, user_id: str, templates: list[FingerTemplate], position: int = 0) -> None:
        """Seal and store `templates` as finger `position` of `user_id` (replacing that finger's earlier ones)."""
        self._path(user_id, position)                    # validates both
        if not 1 <= len(templates) <= thresholds.FINGER_ENROL_MAX_IMPRESSIONS:
            raise BadRequest("templates", f"1-{thresholds.FINGER_ENROL_MAX_IMPRESSIONS} impressions")
        plain = b"".join(struct.pack(">I", len(r)) + r for r in (iso.encode(t) for t in templates))
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _changed(self.folder, user_id)
        self._store_marked(user_id, position, self._box.seal(_label(user_id, position), plain),
                           versions.oldest([t.extractor for t in templates]))
        _changed(self.folder, user_id)

    def _store_marked(self, user_id: str, position: int, sealed: bytes, extractor: int | None) -> None:
        """`_store`, the finger's extractor marker removed before and written after (interrupted: unknown)."""
        path = self._path(user_id, position)
        versions.forget_marker(path)
        self._store(user_id, position, sealed)
        versions.write_marker(path, extractor)

    def get(self, user_id: str) -> list[FingerTemplate]:
        """The impressions of every enrolled finger of `user_id`; `NotFound` if none (opaque vault errors if
        tampered)."""
        positions = self.fingers(user_id)
        if not positions:
            raise NotFound(f"no fingerprint reference for user {user_id}")
        return [t for position in positions for t in self._impressions(user_id, position)]

    def _impressions(self, user_id: str, position: int) -> list[FingerTemplate]:
        return _decode(self._box.unseal(_label(user_id, position), self._sealed(user_id, position)))

    def _files(self) -> list[tuple[str, int, Path]]:
        if not self.folder.is_dir():
            return []
        found = [(m, p) for p in self.folder.glob("*.fmr") if (m := _FILE.match(p.name))]
        return sorted((m.group(1), int(m.group(2) or 0), p) for m, p in found)

    def enrolled(self) -> list[str]:
        """The ids of everyone with at least one finger enrolled."""
        return sorted({user_id for user_id, _, _ in self._files()})

    def fingers(self, user_id: str) -> list[int]:
        """The enrolled finger positions of `user_id` (see FINGER_NAMES), without unsealing anything."""
        self._path(user_id)
        return [position for uid, position, _ in self._files() if uid == user_id]

    def delete(self, user_id: str, position: int | None = None) -> int:
        """Remove every finger of `user_id` (or one `position`); return how many fingers were removed."""
        path = self._path(user_id, position or 0)        # validates both
        if position is None:
            return erase_references(self.folder, user_id)
        if not path.exists():
            return 0
        _changed(self.folder, user_id)
        shred(path)
        versions.forget_marker(path)
        if self._fragments is not None:
            self._fragments.delete_stems({_stem(user_id, position)})
        return 1

    def export_for_backup(self) -> list[tuple[str, int, bytearray]]:
        """Every finger's records, unsealed: (user id, position, length-prefixed ISO records); wipe them after."""
        out: list[tuple[str, int, bytearray]] = []
        for user_id, position, _ in self._files():
            sealed = self._sealed(user_id, position)
            out.append((user_id, position, bytearray(self._box.unseal(_label(user_id, position), sealed))))
        return out

    def import_from_backup(self, fingers: list[tuple[str, int, bytes]], users: set[str] | frozenset[str]) -> int:
        """Seal the backed-up fingers of `users` under this lock's box (each checked as ISO records first)."""
        chosen = [(u, p, plain) for u, p, plain in fingers if u in users]
        extractors = []
        for user_id, position, plain in chosen:
            self._path(user_id, position)
            impressions = _decode(plain)
            if not 1 <= len(impressions) <= thresholds.FINGER_ENROL_MAX_IMPRESSIONS:
                raise BadRequest("backup", f"finger {position} of {user_id}: no usable impressions")
            extractors.append(versions.oldest([t.extractor for t in impressions]))
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for (user_id, position, plain), extractor in zip(chosen, extractors, strict=True):
            _changed(self.folder, user_id)
            self._store_marked(user_id, position, self._box.seal(_label(user_id, position), plain), extractor)
            _changed(self.folder, user_id)
        return len(chosen)

    def score(self, user_id: str, probe: FingerTemplate) -> float:
        """Best similarity of `probe` against every stored impression of `user_id`."""
        prepared = matcher.prepare(probe)
        return max(matcher.similarity(prepared, matcher.prepare(t)) for t in self.get(user_id))


_CANARY = "finger-index:canary"
_Stat = tuple[int, int, int, int]   # inode, size, mtime ns, ctime ns: a replaced or rewritten file differs
_INDEXES: weakref.WeakSet[ReferenceIndex] = weakref.WeakSet()
_INDEXES_LOCK = threading.Lock()


def _changed(folder: Path, user_id: str) -> None:
    """A finger of `user_id` in `folder` is about to change or has changed: every index drops that person."""
    with _INDEXES_LOCK:
        indexes = list(_INDEXES)
    for index in indexes:
        index.forget(folder, user_id)


@dataclasses.dataclass
class _Entry:
    stat: _Stat
    user_id: str
    shares: str | None          # the generation of its shares when fragmented
    share_stat: _ShareStat
    prepared: list[matcher.PreparedTemplate]
    keys: list[np.ndarray]


class ReferenceIndex:
    """The door's 1:N index over one folder's sealed references, held in memory (see the module docstring).

    Thread-safe: one search (or per-person `forget`) at a time; `wipe` waits for none of them (a tamper
    response must not wait for a cold build) — a search it overtook raises `VaultErased` rather than answer
    from what was wiped under it, and the search after it rebuilds from the sealed files.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._swap = threading.Lock()      # guards the fields below and `_epoch` only (see `wipe`)
        self._epoch = 0                    # bumped by every wipe
        self._folder: Path | None = None
        self._box: SecretBox | None = None
        self._canary: bytes | None = None
        self._entries: dict[str, _Entry] = {}      # by file name, in the order of `FingerReferences._files`
        self._index: EdgeIndex | None = None
        with _INDEXES_LOCK:
            _INDEXES.add(self)

    def __len__(self) -> int:
        index = self._index
        return 0 if index is None else len(index)

    def search(self, references: FingerReferences, probe: matcher.PreparedTemplate) -> list[Hit]:
        """`EdgeIndex.search` over every enrolled finger of `references`, as a fresh index built from the sealed
        files would answer (same rows in the same order).  Vault errors as unsealing them raises."""
        with self._lock:
            with self._swap:
                epoch = self._epoch
            if not self._trusted(references):
                self._forget_all()
            held = self._entries
            entries: dict[str, _Entry] = {}
            rebuilt = self._index is None
            canary = self._canary
            try:
                for user_id, position, path in references._files():
                    try:
                        st = path.stat()
                    except FileNotFoundError:       # removed since the listing: as if it had not been listed
                        continue
                    stat = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                    entry = held.get(path.name)
                    if entry is None or entry.stat != stat or (
                            entry.share_stat != references._share_stat(entry.shares)):
                        shares, share_stat = references._shares(user_id, position)
                        prepared = [matcher.prepare(t) for t in references._impressions(user_id, position)]
                        entry = _Entry(stat, user_id, shares, share_stat, prepared, [edge_keys(p) for p in prepared])
                        rebuilt = True
                    entries[path.name] = entry
                if entries and canary is None:  # nothing unsealed, nothing to vouch for (as before)
                    canary = references._box.seal(_CANARY, b"\x00")
                rebuilt = rebuilt or entries.keys() != held.keys()
                index = _build(entries) if rebuilt else self._index
                with self._swap:
                    if self._epoch != epoch:
                        raise VaultErased("the fingerprint index was wiped during the search")
                    self._entries, self._index, self._canary = entries, index, canary
                    self._folder, self._box = references.folder, references._box
            except BaseException:
                for name, entry in entries.items():
                    if held.get(name) is not entry:
                        _zero(entry)
                raise
            for name, old in held.items():
                if entries.get(name) is not old:
                    _zero(old)
            assert index is not None
            try:
                hits = index.search(probe)
            except Exception:
                if self._epoch != epoch:
                    raise VaultErased("the fingerprint index was wiped during the search") from None
                raise
            if self._epoch != epoch:            # the answer may come from zeroed minutiae: no answer
                raise VaultErased("the fingerprint index was wiped during the search")
            return hits

    def _trusted(self, references: FingerReferences) -> bool:
        """Whether what is held was read from this folder under this box's current key (erased: not)."""
        if self._folder != references.folder or self._box is not references._box or self._canary is None:
            return False
        try:
            references._box.unseal(_CANARY, self._canary)
        except (VaultError, InvalidSealedTemplate, ConfigError):
            return False
        return True

    def forget(self, folder: Path, user_id: str) -> None:
        """Drop `user_id`'s entries if this index is over `folder` (the next search re-reads what remains)."""
        with self._lock:
            if self._folder is None or os.path.abspath(self._folder) != os.path.abspath(folder):
                return
            with self._swap:
                gone = [self._entries.pop(name) for name, entry in list(self._entries.items())
                        if entry.user_id == user_id]
                index = self._index if gone else None
                if gone:
                    self._index = None
            for entry in gone:
                _zero(entry)
            if index is not None:
                index.wipe()

    def wipe(self) -> None:
        """Zero and drop everything held, now (a tamper response's memory scrub; closing the runtime)."""
        self._drop(new_epoch=True)

    clear = wipe

    def _forget_all(self) -> None:
        """Held under another key or folder: zero and drop it (not a wipe: the search goes on)."""
        self._drop(new_epoch=False)

    def _drop(self, *, new_epoch: bool) -> None:
        """Swap everything held out under the lock (a new epoch: searches in progress refuse), then zero it."""
        with self._swap:
            if new_epoch:
                self._epoch += 1
            entries, index = self._entries, self._index
            self._entries, self._index, self._canary, self._box, self._folder = {}, None, None, None, None
        for entry in entries.values():
            _zero(entry)
        if index is not None:
            index.wipe()


def _build(entries: dict[str, _Entry]) -> EdgeIndex:
    """Rows in the order a fresh build over `FingerReferences.get` has them: by user id, finger position and
    impression, keyed ``<user id>:<k>`` with k counted over the person's fingers."""
    index = EdgeIndex()
    counts: dict[str, int] = {}
    for name in sorted(entries, key=_sort_key):
        entry = entries[name]
        for prepared, keys in zip(entry.prepared, entry.keys, strict=True):
            k = counts.get(entry.user_id, 0)
            counts[entry.user_id] = k + 1
            index.add(f"{entry.user_id}:{k}", prepared, keys)
    return index


def _sort_key(name: str) -> tuple[str, int]:
    m = _FILE.match(name)
    assert m is not None
    return m.group(1), int(m.group(2) or 0)


def _zero(entry: _Entry) -> None:
    """Overwrite the prepared minutiae and edge keys of `entry` (best effort: see `limen.tamper.memory`)."""
    for prepared in entry.prepared:
        for f in dataclasses.fields(prepared):
            value = getattr(prepared, f.name)
            if isinstance(value, np.ndarray) and value.flags.writeable:
                value.fill(0)
    for keys in entry.keys:
        if keys.flags.writeable:
            keys.fill(0)
    entry.prepared.clear()
    entry.keys.clear()


def _decode(plain: bytes) -> list[FingerTemplate]:
    """Length-prefixed ISO/IEC 19794-2 records (what a finger's file seals)."""
    out, offset = [], 0
    while offset < len(plain):
        if offset + 4 > len(plain):
            raise BadRequest("iso_record", "truncated record length")
        (size,) = struct.unpack_from(">I", plain, offset)
        out.append(iso.decode(plain[offset + 4:offset + 4 + size]))
        offset += 4 + size
    return out
