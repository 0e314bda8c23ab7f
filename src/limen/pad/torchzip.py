"""Read a PyTorch state dict into numpy arrays without torch and without unrestricted pickle.

Both serialisations torch has used are read: the legacy stream (torch < 1.6:
magic, protocol, system-info and object pickles, the storage keys, then each
storage as an 8-byte element count and its raw bytes) and the zip archive
(`<root>/data.pkl` plus `<root>/data/<key>`).  The object pickle runs under
`_SafeUnpickler`: `find_class` resolves only `OrderedDict`, torch's
`_rebuild_tensor_v2` and the plain storage types, each mapped to numpy;
anything else — `os.system`, `builtins.eval`, any other global — is refused.
Every storage size, offset and stride is checked against the bytes present
before an array is built.  All failures raise `BadModelFile` naming the source.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, NamedTuple

from limen.errors import BadModelFile

if TYPE_CHECKING:  # numpy loads when a checkpoint is read: `limen status` imports this module without it
    import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024  # far above MiniFASNet's 1.9 MB; bounds memory on hostile input
MAX_TENSORS = 4096


class _StorageType(NamedTuple):  # a tuple: a pickle's BUILD cannot alter it
    name: str
    dtype: str  # numpy's little-endian type code
    itemsize: int


_STORAGES = {
    name: _StorageType(name, dtype, int(dtype[2:]))
    for name, dtype in (
        ("FloatStorage", "<f4"),
        ("DoubleStorage", "<f8"),
        ("HalfStorage", "<f2"),
        ("LongStorage", "<i8"),
        ("IntStorage", "<i4"),
        ("ByteStorage", "|u1"),
    )
}


class _StorageRef(NamedTuple):
    key: str
    kind: _StorageType
    numel: int


class _TensorRef(NamedTuple):
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage: object, offset: object, size: object, stride: object, *_rest: object) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError("tensor without a storage")
    if not (isinstance(offset, int) and _is_int(offset) and isinstance(size, tuple) and isinstance(stride, tuple)
            and _int_tuple(size) and _int_tuple(stride) and len(size) == len(stride)):
        raise pickle.UnpicklingError("malformed tensor metadata")
    return _TensorRef(storage, offset, size, stride)




def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int_tuple(v: object) -> bool:
    return isinstance(v, tuple) and len(v) <= 8 and all(_is_int(x) and 0 <= x < 2**31 for x in v)


class _SafeUnpickler(pickle.Unpickler):
    """Resolves only the allow-listed globals; storages become `_StorageRef` placeholders."""

    def __init__(self, fh: io.BytesIO) -> None:
        super().__init__(fh)
        self.storages: dict[str, _StorageRef] = {}

        def rebuild(*args: object) -> _TensorRef:  # a fresh function per load: a BUILD on it stays in this load
            return _rebuild_tensor_v2(*args)  # type: ignore[arg-type]

        self._allowed: dict[tuple[str, str], object] = {
            ("collections", "OrderedDict"): OrderedDict,  # a built-in type: its attributes cannot be set
            ("torch._utils", "_rebuild_tensor_v2"): rebuild,
            **{("torch", name): kind for name, kind in _STORAGES.items()},
        }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise pickle.UnpicklingError("unexpected persistent id")
        kind, key, _location, numel = pid[1:5]
        if not (isinstance(kind, _StorageType) and isinstance(key, str) and key.isalnum() and len(key) <= 40
                and _is_int(numel) and 0 <= numel <= MAX_CHECKPOINT_BYTES):
            raise pickle.UnpicklingError("malformed storage reference")
        if len(pid) == 6 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        known = self.storages.setdefault(key, _StorageRef(key, kind, numel))
        if known != _StorageRef(key, kind, numel):
            raise pickle.UnpicklingError(f"storage {key} declared twice differently")
        return known


def read_state_dict(data: bytes, source: str) -> dict[str, np.ndarray]:
    """The tensors of a torch state dict in `data`, as float/int numpy arrays keyed by name.

    A `module.` prefix (DataParallel) is removed from every key, as upstream
    loaders do.  Raises `BadModelFile(source, reason)` on anything else.
    """
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise BadModelFile(source, f"larger than {MAX_CHECKPOINT_BYTES} bytes")
    try:
        if data[:4] == b"PK\x03\x04":
            obj, storages, blobs = _read_zip(data)
        else:
            obj, storages, blobs = _read_legacy(data)
        return _materialise(obj, storages, blobs)
    except BadModelFile:
        raise
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, struct.error) as exc:
        raise BadModelFile(source, f"not a readable torch checkpoint ({exc})") from None
    except Exception as exc:  # a hostile pickle can provoke almost any error: one clear refusal
        raise BadModelFile(source, f"not a readable torch checkpoint ({type(exc).__name__}: {exc})") from None


def _load(fh: io.BytesIO) -> tuple[Any, dict[str, _StorageRef]]:
    unpickler = _SafeUnpickler(fh)
    return unpickler.load(), unpickler.storages


def _plain_pickle(fh: io.BytesIO) -> Any:
    """A header pickle: no globals and no persistent ids allowed at all."""
    obj, storages = _load(fh)
    if storages:
        raise pickle.UnpicklingError("storage in a header record")
    return obj


def _read_legacy(data: bytes) -> tuple[Any, dict[str, _StorageRef], dict[str, bytes]]:
    fh = io.BytesIO(data)
    if _plain_pickle(fh) != LEGACY_MAGIC:
        raise pickle.UnpicklingError("not a torch checkpoint (bad magic number)")
    if _plain_pickle(fh) != LEGACY_PROTOCOL:
        raise pickle.UnpicklingError("unsupported torch protocol version")
    info = _plain_pickle(fh)
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise pickle.UnpicklingError("not a little-endian checkpoint")
    obj, storages = _load(fh)
    keys = _plain_pickle(fh)
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)) or sorted(keys) != sorted(storages):
        raise pickle.UnpicklingError("storage key list does not match the tensors")
    blobs: dict[str, bytes] = {}
    for key in keys:
        ref = storages[key]
        (numel,) = struct.unpack("<q", fh.read(8))
        if numel != ref.numel:
            raise pickle.UnpicklingError(f"storage {key}: {numel} elements stored, {ref.numel} declared")
        nbytes = numel * ref.kind.itemsize
        blob = fh.read(nbytes)
        if len(blob) != nbytes:
            raise pickle.UnpicklingError(f"truncated (storage {key})")
        blobs[key] = blob
    if fh.read(1):
        raise pickle.UnpicklingError("trailing bytes after the last storage")
    return obj, storages, blobs


def _read_zip(data: bytes) -> tuple[Any, dict[str, _StorageRef], dict[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise pickle.UnpicklingError("no single <root>/data.pkl in the archive")
        root = pickles[0].split("/")[0]
        if sum(info.file_size for info in archive.infolist()) > MAX_CHECKPOINT_BYTES:
            raise pickle.UnpicklingError("archive expands beyond the size limit")
        obj, storages = _load(io.BytesIO(archive.read(pickles[0])))
        blobs: dict[str, bytes] = {}
        for key, ref in storages.items():
            try:
                blob = archive.read(f"{root}/data/{key}")
            except KeyError:
                raise pickle.UnpicklingError(f"storage {key} missing from the archive") from None
            if len(blob) != ref.numel * ref.kind.itemsize:
                raise pickle.UnpicklingError(f"storage {key} has {len(blob)} bytes, not {ref.numel} elements")
            blobs[key] = blob
    return obj, storages, blobs


def _materialise(obj: Any, storages: dict[str, _StorageRef], blobs: dict[str, bytes]) -> dict[str, np.ndarray]:
    if not isinstance(obj, dict) or not obj or len(obj) > MAX_TENSORS:
        raise pickle.UnpicklingError("the checkpoint is not a state dict")
    import numpy as np

    arrays = {key: np.frombuffer(blob, dtype=storages[key].kind.dtype) for key, blob in blobs.items()}
    state: dict[str, np.ndarray] = {}
    for name, ref in obj.items():
        if not isinstance(name, str) or not isinstance(ref, _TensorRef):
            raise pickle.UnpicklingError(f"entry {name!r} is not a tensor")
        key = name.removeprefix("module.")
        if key in state:
            raise pickle.UnpicklingError(f"duplicate tensor {key}")
        state[key] = _tensor(arrays[ref.storage.key], ref, name)
    return state


def _tensor(flat: np.ndarray, ref: _TensorRef, name: str) -> np.ndarray:
    import numpy as np

    if any(s < 0 for s in ref.stride) or ref.offset < 0:
        raise pickle.UnpicklingError(f"{name}: negative stride or offset")
    if 0 in ref.size:
        return np.zeros(ref.size, dtype=flat.dtype.newbyteorder("="))
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride, strict=True))
    if last >= flat.size:
        raise pickle.UnpicklingError(f"{name}: tensor reaches past its storage")
    item = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(flat[ref.offset :], shape=ref.size,
                                           strides=tuple(s * item for s in ref.stride), writeable=False)
    return np.array(view, dtype=flat.dtype.newbyteorder("="))
