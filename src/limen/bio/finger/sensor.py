"""Driver for R30x / R503 / AS608 / ZFM UART fingerprint modules (pyserial).

`R30xSensor(port, password)` verifies the module's password (VfyPwd) before every
scan: a module that refuses it, does not answer it or answers garbage fails the
check (`SensorAuthError`: swapped, reset or disconnected), and `identify()` then
reports `password-refused`, which the tamper binding (limen.tamper.binding)
sees as a swapped sensor.  A serial port that cannot be opened, read or written
is `SensorDisconnected` (also a `limen.errors.SensorUnavailable`), never a bare
`serial.SerialException`.  `pair()` sets a fresh random password on a module
still on the factory one and returns it with the module's identity; the caller
keeps both (they are not secrets of the vault, but the password must not be
logged).  Images come up as 256 × 288 px, 4 bits per pixel, and are expanded to
8-bit for Limen's extractor (match on host); enrolment and search on the
module's own library are there too (match on sensor: GenImg → Img2Tz → Search,
the image never leaves the module).  Thread-safety: one
instance per port, used from one thread.

`PairedSensor` is the lock's side of a pairing (port, password, identity),
kept in `<data dir>/finger-sensor.json` with the password sealed under the
vault (`save_pairing` / `load_pairing`); `PairedSensor.open()` refuses a
module whose identity is not the paired one (`SensorAuthError`).

Erasure on the module (match on sensor): `erase_pages_of(data_dir, box, user_id)` deletes one person's pages
(DeleteChar) and drops them from the sealed page map; `empty_library(data_dir, box)` empties the whole library
(Empty) before a decommission or a crypto-erase, while the sealed password can still be read.  Both return a
`SensorErasure` (what was erased, what the module refused or could not be asked); the runtime audits it.
`EmptyOnWipe` empties the library on a tamper response, right after its crypto-erase (see its docstring).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import secrets
import struct
import termios
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import serial

from limen import thresholds as T
from limen.bio.finger.protocol import (
    DEFAULT_ADDRESS,
    DEFAULT_PASSWORD,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    NO_FINGER,
    OK,
    Command,
    Packet,
    Pid,
    SensorAuthError,
    SensorDisconnected,
    SensorNoFinger,
    SensorProtocolError,
    SensorRefused,
    SensorTimeout,
    SystemParameters,
    decode_body,
    decode_header,
    encode,
)
from limen.errors import VaultError
from limen.fsio import atomic_write

if TYPE_CHECKING:
    from limen.vault.secrets import SecretBox

WRONG_PASSWORD = 0x13
REFUSED_IDENTITY = "password-refused"
PAIRING_FILE = "finger-sensor.json"
PAGES_FILE = "finger-sensor-pages.json"
_SEAL_LABEL = "finger-sensor:password"
_PAGES_LABEL = "finger-sensor:pages"
# what pyserial lets through when the port is gone (a vanished pty/USB adapter fails tcflush with termios.error)
_SERIAL_ERRORS = (serial.SerialException, OSError, termios.error)


@dataclass(frozen=True)
class Pairing:
    """What `pair()` returns: the new password and the identity bound to it."""

    password: int
    identity: str


class R30xSensor:
    """One fingerprint module on a serial port."""

    kind = "fingerprint"

    def __init__(self, port: str, password: int = DEFAULT_PASSWORD, address: int = DEFAULT_ADDRESS,
                 baudrate: int = 57600, timeout_s: float = 2.0, name: str = "fingerprint") -> None:
        self.name = name
        self._password = password
        self._address = address
        self._timeout = timeout_s
        self._port_name = port
        try:
            self._port = serial.Serial(port, baudrate=baudrate, timeout=timeout_s)
        except _SERIAL_ERRORS as exc:
            raise SensorDisconnected(port, _why(exc)) from exc

    def close(self) -> None:
        with contextlib.suppress(*_SERIAL_ERRORS):  # an unplugged adapter: nothing left to close
            self._port.close()

    def __enter__(self) -> R30xSensor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport
    def _read_exact(self, n: int) -> bytes:
        try:
            data = self._port.read(n)
        except _SERIAL_ERRORS as exc:
            raise SensorDisconnected(self._port_name, _why(exc)) from exc
        if len(data) != n:
            raise SensorTimeout(f"sensor did not answer in {self._timeout:.1f} s ({len(data)}/{n} bytes)")
        return data

    def _read_packet(self) -> Packet:
        address, pid, length = decode_header(self._read_exact(9))
        if address != self._address:
            raise SensorProtocolError("answer from another module address")
        return decode_body(address, pid, length, self._read_exact(length))

    def _command(self, command: Command, args: bytes = b"", check: bool = True) -> bytes:
        try:
            self._port.reset_input_buffer()
            self._port.write(encode(Pid.COMMAND, bytes([command]) + args, self._address))
        except _SERIAL_ERRORS as exc:
            raise SensorDisconnected(self._port_name, _why(exc)) from exc
        packet = self._read_packet()
        if packet.pid != Pid.ACK or not packet.payload:
            raise SensorProtocolError("expected an acknowledge packet")
        code = packet.payload[0]
        if check and code != OK:
            raise SensorRefused(command, code)
        return packet.payload

    # ------------------------------------------------------------------ handshake and identity
    def handshake(self) -> None:
        """VfyPwd with the paired password.  `SensorAuthError` unless the module confirms it: a refusal, no
        answer and a garbled answer all fail the check (a module that does not answer it is not proven to be
        the paired one).  `SensorDisconnected` when the serial port itself fails."""
        try:
            answer = self._command(Command.VFY_PWD, struct.pack(">I", self._password), check=False)
        except SensorTimeout as exc:
            raise SensorAuthError(f"the fingerprint sensor did not answer its password check ({exc})") from exc
        except SensorProtocolError as exc:
            raise SensorAuthError(f"the fingerprint sensor answered its password check with garbage ({exc})"
                                  ) from exc
        if answer[0] == WRONG_PASSWORD:
            raise SensorAuthError("the fingerprint sensor refused the paired password: it is not the paired one "
                                  "(swapped or reset?)")
        if answer[0] != OK:
            raise SensorAuthError(f"the fingerprint sensor did not confirm its password check (code 0x{answer[0]:02X})")

    def system_parameters(self) -> SystemParameters:
        return SystemParameters.parse(self._command(Command.READ_SYS_PARA)[1:])

    def identify(self) -> str | None:
        """The module's identity for the tamper binding; `password-refused` after a refused handshake."""
        try:
            self.handshake()
        except SensorAuthError:
            return REFUSED_IDENTITY
        return self.identity()

    def identity(self) -> str:
        """The module's identity (system parameters, product serial when it has one); after a `handshake()`."""
        p = self.system_parameters()
        serial_no = self._serial_number()
        return (f"r30x:sys={p.system_id:04X}:lib={p.library_size}:addr={p.address:08X}:"
                f"pkt={p.packet_size}:sn={serial_no}")

    def _serial_number(self) -> str:
        answer = self._command(Command.READ_PROD_INFO, check=False)
        if answer[0] != OK or len(answer) < 1 + 28:
            return "none"                         # R30x/AS608 have no product info page; R503 has
        # model (16 bytes), batch number (4), serial number (8), hardware version, sensor, …
        return answer[1 + 20:1 + 28].hex()

    def pair(self, factory_password: int = DEFAULT_PASSWORD) -> Pairing:
        """Replace the factory password by a random one and empty the module's library (a model stored before
        the pairing, by whoever held the module, must not be found by a search); returns the new password with
        the module's identity."""
        self._password = factory_password
        self.handshake()
        new = secrets.randbits(32) or 1
        self._command(Command.SET_PWD, struct.pack(">I", new))
        self._password = new
        self.handshake()
        self._command(Command.EMPTY)
        identity = self.identify()
        if identity is None or hmac.compare_digest(identity, REFUSED_IDENTITY):
            raise SensorAuthError("the module did not accept its new password")
        return Pairing(new, identity)

    # ------------------------------------------------------------------ match on host
    def capture_image(self, wait_s: float = 10.0, poll_s: float = 0.05) -> np.ndarray:
        """Wait for a finger (password checked first), upload the image: 288 × 256 uint8 (match on host)."""
        self.take_finger(wait_s, poll_s)
        self._command(Command.UP_IMAGE)
        return unpack_image(self._read_data())

    def take_finger(self, wait_s: float = 10.0, poll_s: float = 0.05) -> None:
        """Password check, then GenImg until a finger is there: the image stays in the module's buffer (match on
        sensor never uploads it: the print does not cross the cable).  `SensorNoFinger` after `wait_s`."""
        self.handshake()
        deadline = time.monotonic() + wait_s
        while True:
            code = self._command(Command.GEN_IMG, check=False)[0]
            if code == OK:
                break
            if code != NO_FINGER:
                raise SensorRefused(Command.GEN_IMG, code)
            if time.monotonic() > deadline:
                raise SensorNoFinger(f"no finger on the sensor within {wait_s:.0f} s")
            time.sleep(poll_s)

    def _read_data(self) -> bytes:
        data = bytearray()
        expected = IMAGE_WIDTH * IMAGE_HEIGHT // 2
        while True:
            packet = self._read_packet()
            if packet.pid not in (Pid.DATA, Pid.END):
                raise SensorProtocolError("expected image data packets")
            data += packet.payload
            if len(data) > expected:
                raise SensorProtocolError("more image data than a 256 × 288 image")
            if packet.pid == Pid.END:
                break
        if len(data) != expected:
            raise SensorProtocolError(f"image data of {len(data)} bytes, expected {expected}")
        return bytes(data)

    # ------------------------------------------------------------------ match on sensor
    def enroll_on_sensor(self, page: int, wait_s: float = 10.0) -> None:
        """Two captures → one model stored at `page` of the module's own library."""
        for buffer_id in (1, 2):
            self.take_finger(wait_s)              # GenImg, no upload: the module extracts from its own buffer
            self._command(Command.IMG2TZ, bytes([buffer_id]))
        self._command(Command.REG_MODEL)
        self._command(Command.STORE, struct.pack(">BH", 1, page))

    def search_on_sensor(self, wait_s: float = 10.0) -> tuple[int, int] | None:
        """(page, module score) of the best library match of a new capture, or None.  GenImg → Img2Tz → Search:
        the image is never uploaded (no host-side check needs it in this mode; a blank or unusable capture is
        refused by the module's Img2Tz, `SensorRefused`)."""
        self.take_finger(wait_s)
        self._command(Command.IMG2TZ, b"\x01")
        size = self.system_parameters().library_size
        answer = self._command(Command.SEARCH, struct.pack(">BHH", 1, 0, size), check=False)
        if answer[0] == 0x09:
            return None
        if answer[0] != OK or len(answer) < 5:
            raise SensorRefused(Command.SEARCH, answer[0])
        page, score = struct.unpack(">HH", answer[1:5])
        return page, score

    def delete_on_sensor(self, page: int) -> None:
        """DeleteChar: remove the model at `page` of the module's library (password checked first);
        `SensorRefused` if the module does not confirm it."""
        self.handshake()
        self._command(Command.DELETE_CHAR, struct.pack(">HH", page, 1))

    def empty_library(self) -> None:
        """Empty: remove every model of the module's library (password checked first); `SensorRefused` if the
        module does not confirm it."""
        self.handshake()
        self._command(Command.EMPTY)


def _why(exc: BaseException) -> str:
    """A serial error in one line (pyserial's messages repeat the errno)."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def unpack_image(data: bytes) -> np.ndarray:
    """4-bit packed pixels (high nibble first) → 8-bit 288 × 256 image."""
    raw = np.frombuffer(data, np.uint8)
    pixels = np.empty(raw.size * 2, np.uint8)
    pixels[0::2] = raw >> 4
    pixels[1::2] = raw & 0x0F
    return (pixels * 17).reshape(IMAGE_HEIGHT, IMAGE_WIDTH)


def pack_image(image: np.ndarray) -> bytes:
    """8-bit 288 × 256 image → 4-bit packed pixels (what the module sends)."""
    nibbles = (image.astype(np.uint16) // 16).astype(np.uint8).reshape(-1)
    return bytes((nibbles[0::2] << 4) | nibbles[1::2])


@dataclass(frozen=True)
class PairedSensor:
    """The lock's paired module: its port, its password (never shown) and the identity bound to it."""

    port: str
    password: int = field(repr=False)
    identity: str

    def open(self) -> R30xSensor:
        """The module on `port`, checked: `SensorAuthError` if it is not the paired one (swapped, reset)."""
        module = R30xSensor(self.port, password=self.password)
        try:
            module.handshake()  # its own error (refused, no answer, garbage): why the module is not trusted
            found = module.identity()
        except BaseException:
            module.close()
            raise
        if not hmac.compare_digest(found, self.identity):
            module.close()
            raise SensorAuthError("the fingerprint sensor is not the paired one (swapped, reset or wrong password)")
        return module

    def capture(self, wait_s: float = 10.0) -> np.ndarray:
        """One image from the paired module (opened and checked for this capture)."""
        with self.open() as module:
            return module.capture_image(wait_s)

    def search(self, wait_s: float = 10.0) -> int | None:
        """Match on sensor: the library page of the finger now on the paired module, or None (no match).
        The module's own score is dropped: it is on the firmware's scale, not Limen's."""
        with self.open() as module:
            found = module.search_on_sensor(wait_s)
        return None if found is None else found[0]

    def delete(self, page: int) -> None:
        """Delete `page` on the paired module (opened and checked); raises if it does not confirm."""
        with self.open() as module:
            module.delete_on_sensor(page)

    def empty(self) -> None:
        """Empty the paired module's whole library (opened and checked); raises if it does not confirm."""
        with self.open() as module:
            module.empty_library()


@dataclass(frozen=True)
class SensorPages:
    """Which person each page of the paired module's library belongs to (match on sensor).

    Kept in `<data dir>/finger-sensor-pages.json`, sealed under the vault (an altered file is an opaque
    vault error, not a new person at the door), bound to the identity of the module the pages are on."""

    identity: str
    pages: dict[int, str] = field(default_factory=dict)
    # a fresh random value sealed with every save (`save_pages`), "" before the first: a search is judged by the
    # map of the generation it was made under (`limen.fingerprint`), never by one where its page changed hands
    generation: str = ""

    def owner_of(self, page: int, identity: str) -> str | None:
        """The person enrolled at `page` of the module `identity`, or None (another module, an unknown page)."""
        if not hmac.compare_digest(identity, self.identity):
            return None
        return self.pages.get(page)

    def of(self, user_id: str) -> list[int]:
        return sorted(p for p, uid in self.pages.items() if uid == user_id)

    def free_page(self, library_size: int, taken: Collection[int] = ()) -> int:
        """The lowest page this lock has not used nor `taken` (`ValueError` when the library is full)."""
        page = next((p for p in range(library_size) if p not in self.pages and p not in taken), None)
        if page is None:
            raise ValueError(f"the sensor's library is full ({library_size} pages)")
        return page

    def with_page(self, page: int, user_id: str) -> SensorPages:
        return SensorPages(self.identity, {**self.pages, page: user_id}, self.generation)

    def without(self, *pages: int) -> SensorPages:
        return SensorPages(self.identity, {p: u for p, u in self.pages.items() if p not in pages}, self.generation)


def save_pairing(path: Path, port: str, pairing: Pairing, box: SecretBox) -> PairedSensor:
    """Record a pairing (the password sealed under the vault), 0600, atomically."""
    sealed = box.seal(_SEAL_LABEL, pairing.password.to_bytes(4, "big"))
    atomic_write(path, json.dumps({"port": port, "identity": pairing.identity, "password_sealed": sealed.hex()
                                   }).encode())
    return PairedSensor(port, pairing.password, pairing.identity)


def load_pairing(path: Path, box: SecretBox) -> PairedSensor | None:
    """The recorded pairing, or None when no module was paired (opaque vault errors if the file was altered)."""
    if not path.is_file():
        return None
    try:
        paired = json.loads(path.read_text())
        sealed, port, identity = bytes.fromhex(paired["password_sealed"]), str(paired["port"]), str(paired["identity"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:  # truncated, not JSON, fields missing
        raise VaultError(f"the fingerprint module's pairing record {path.name} is damaged: pair the module again "
                         "(limen finger pair PORT)") from exc
    password = int.from_bytes(box.unseal(_SEAL_LABEL, sealed), "big")
    return PairedSensor(port, password, identity)


def save_pages(path: Path, pages: SensorPages, box: SecretBox) -> SensorPages:
    """Record the page map sealed under the vault, 0600, atomically, as a new generation; returns what was saved."""
    saved = SensorPages(pages.identity, dict(pages.pages), secrets.token_hex(16))
    body = json.dumps({"identity": saved.identity, "pages": {str(p): u for p, u in sorted(saved.pages.items())},
                       "generation": saved.generation})
    atomic_write(path, json.dumps({"version": 1, "sealed": box.seal(_PAGES_LABEL, body.encode()).hex()}).encode())
    return saved


def load_pages(path: Path, box: SecretBox, identity: str) -> SensorPages:
    """The recorded page map; an empty one for module `identity` when none was recorded."""
    if not path.is_file():
        return SensorPages(identity)
    try:
        sealed = bytes.fromhex(json.loads(path.read_text())["sealed"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise VaultError(f"the fingerprint module's page map {path.name} is damaged") from exc
    body = json.loads(box.unseal(_PAGES_LABEL, sealed))
    return SensorPages(str(body["identity"]), {int(p): str(u) for p, u in body["pages"].items()},
                       str(body.get("generation", "")))


@dataclass(frozen=True)
class SensorErasure:
    """What an erasure did on the module: pages deleted, pages it did not confirm (kept in the page map), whether
    the whole library was emptied, and why not (`detail`: never hidden, audited as a failed outcome)."""

    erased: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    detail: str = ""
    emptied: bool = False

    @property
    def complete(self) -> bool:
        return not self.failed and not self.detail

    @property
    def happened(self) -> bool:
        """Something to record: pages were erased, refused, or the module was (or could not be) reached."""
        return bool(self.erased or self.failed or self.detail or self.emptied)

    def counts(self) -> dict[str, int]:
        """For an erasure receipt: {"sensor_pages_erased": n, "sensor_pages_failed": m, "sensor_emptied": 0|1,
        "sensor_incomplete": 0|1}; {} when there was nothing on a module to erase (no module, no page)."""
        if not self.happened:
            return {}
        return {"sensor_pages_erased": len(self.erased), "sensor_pages_failed": len(self.failed),
                "sensor_emptied": int(self.emptied), "sensor_incomplete": int(not self.complete)}


_UNREADABLE = ("the page map cannot be read (vault closed or erased, or no paired module): "
               "empty the module's library by hand")


def erase_pages_of(data_dir: Path, box: SecretBox | None, user_id: str, paired: PairedSensor | None = None,
                   only: Collection[int] | None = None) -> SensorErasure:
    """Delete every page of `user_id` (or those of them in `only`) on the paired module (DeleteChar) and from the
    page map.  A page the module does not confirm stays recorded (its person is gone, so the door refuses it) and
    is in `failed`.  `paired`: the module in use when it is not the recorded pairing (a simulated one)."""
    from limen.bio.finger.protocol import SensorError

    path = data_dir / PAGES_FILE
    if not path.is_file():
        return SensorErasure()
    try:  # a vault erased (or re-provisioned) since: the pairing and the page map cannot be unsealed any more
        if paired is None and box is not None:
            paired = load_pairing(data_dir / PAIRING_FILE, box)
        pages = None if box is None or paired is None else load_pages(path, box, paired.identity)
    except VaultError:
        paired = pages = None
    if box is None or paired is None or pages is None:
        return SensorErasure(detail=_UNREADABLE)
    mine = [p for p in pages.of(user_id) if only is None or p in only]
    if not hmac.compare_digest(pages.identity, paired.identity):
        return SensorErasure(failed=mine, detail="the pages are on a module that is no longer paired: "
                                                 "empty that module's library by hand") if mine else SensorErasure()
    erased, failed, detail = [], [], ""
    for page in mine:
        try:
            paired.delete(page)
            erased.append(page)
        except (SensorError, OSError) as exc:
            failed.append(page)
            detail = str(exc)
    if erased:
        save_pages(path, pages.without(*erased), box)
    return SensorErasure(erased, failed, detail)


def empty_library(data_dir: Path, box: SecretBox | None, paired: PairedSensor | None = None) -> SensorErasure:
    """Empty the paired module's library (every page) and forget the page map.  Call it before a crypto-erase:
    after one, the module's password cannot be unsealed and the module cannot be asked.  Nothing to do when no
    module was paired.  `paired`: the module in use when it is not the recorded pairing (a simulated one)."""
    from limen.bio.finger.protocol import SensorError

    if paired is None and not (data_dir / PAIRING_FILE).is_file():
        return SensorErasure()
    path = data_dir / PAGES_FILE
    try:  # as in erase_pages_of: unreadable after a crypto-erase, reported, not raised
        if paired is None and box is not None:
            paired = load_pairing(data_dir / PAIRING_FILE, box)
        recorded = [] if box is None or paired is None else sorted(load_pages(path, box, paired.identity).pages)
    except VaultError:  # zeroized before (or re-provisioned since): the module's password is gone
        if not path.is_file():
            return SensorErasure()  # emptied by the earlier zeroize, or nothing was enrolled on it
        return SensorErasure(detail="the vault was erased before the module's library was emptied: its password "
                                    "cannot be read; empty the module's library by hand")
    if box is None or paired is None:
        return SensorErasure(detail=_UNREADABLE)
    try:
        paired.empty()
    except (SensorError, OSError) as exc:
        return SensorErasure(failed=recorded, detail=str(exc))
    path.unlink(missing_ok=True)
    return SensorErasure(erased=recorded, emptied=True)


# how long a tamper response's second Empty waits for the serial line: the longest an exchange holds it (an
# enrolment's two captures, each up to FINGER_SENSOR_WAIT_S, and the serial timeouts around them)
EMPTY_RETRY_WAIT_S = 2 * T.FINGER_SENSOR_WAIT_S + 10.0


class EmptyOnWipe:
    """Empties the paired module on a tamper response.  Registered with the response's memory scrub
    (`limen.tamper.memory.register`), which calls `wipe()` right after the crypto-erase: after it the module's
    password cannot be unsealed, so this holder keeps the paired module (unsealed while the vault was open; the
    same password every scan unseals).  `wipe()` forgets it and sends Empty from a background thread (the door
    is secured meanwhile, not after a serial timeout) at once, without waiting for `line` (the runtime's
    `sensor_lock`) if a scan holds it.  An Empty that failed, or was sent while the line was busy (the two
    conversations may have interleaved), is sent again once the line is free (at most `retry_wait_s` later; then
    regardless).  `report` gets the outcome (the runtime audits it; a final failure is a critical alarm)."""

    def __init__(self, paired: PairedSensor, pages_file: Path, report: Callable[[SensorErasure], None],
                 line: threading.RLock | None = None, retry_wait_s: float = EMPTY_RETRY_WAIT_S) -> None:
        self._paired: PairedSensor | None = paired
        self._pages_file = pages_file
        self._report = report
        self._line = line if line is not None else threading.RLock()
        self.retry_wait_s = retry_wait_s
        self.thread: threading.Thread | None = None

    def forget(self) -> None:
        """Drop the pairing without emptying (the runtime closed: a later response is another process's)."""
        self._paired = None

    def wipe(self) -> None:
        paired, self._paired = self._paired, None
        if paired is not None:
            self.thread = threading.Thread(target=self._empty, args=(paired,), name="sensor-empty", daemon=True)
            self.thread.start()

    def _empty(self, paired: PairedSensor) -> None:
        free = self._line.acquire(blocking=False)
        try:
            why = _try_empty(paired)
        finally:
            if free:
                self._line.release()
        if why is not None or not free:
            held = self._line.acquire(timeout=self.retry_wait_s)
            try:
                again = _try_empty(paired)
            finally:
                if held:
                    self._line.release()
            why = None if again is None else (again if why is None else f"{why}; again: {again}")
        if why is not None:
            self._report(SensorErasure(detail=f"{why}: empty the module's library by hand"))
            return
        self._pages_file.unlink(missing_ok=True)
        self._report(SensorErasure(emptied=True))


def _try_empty(paired: PairedSensor) -> str | None:
    """Empty the paired module; None when it confirmed, else why not."""
    from limen.bio.finger.protocol import SensorError

    try:
        paired.empty()
    except (SensorError, OSError) as exc:
        return str(exc)
    return None
