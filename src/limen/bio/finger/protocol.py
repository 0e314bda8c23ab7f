"""The R30x / R503 / AS608 / ZFM UART packet format, shared by the driver and the simulator.

A packet: header 0xEF01, 4-byte module address, 1-byte packet id (command,
data, acknowledge, end of data), 2-byte length (payload + 2), payload, and a
2-byte checksum = (id + both length bytes + every payload byte) mod 65536.
Everything big-endian.  The module answers every command with one acknowledge
packet whose first payload byte is a confirmation code.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from limen.errors import LimenError, SensorUnavailable

HEADER = b"\xef\x01"
DEFAULT_ADDRESS = 0xFFFFFFFF
DEFAULT_PASSWORD = 0x00000000
IMAGE_WIDTH = 256                  # R30x image: 256 × 288 px, 4 bits per pixel over the wire
IMAGE_HEIGHT = 288
MAX_PAYLOAD = 256 + 32             # largest data packet (packet size setting 3) plus margin


class SensorError(LimenError):
    """A fingerprint sensor failed: no answer, a garbled answer, or a refused password.

        SensorError
        ├── SensorTimeout       nothing (or not enough) came back in time
        │   └── SensorNoFinger  the password check passed, then no finger was laid within the wait
        ├── SensorProtocolError bad header, address, checksum, length or unexpected packet
        ├── SensorAuthError     the password check failed: refused, not answered, or answered garbage
        ├── SensorDisconnected  the serial port is gone or failed (also a `limen.errors.SensorUnavailable`)
        └── SensorRefused       a well-formed refusal (no finger, too few features, …) with its code
    """


class SensorTimeout(SensorError):
    """The sensor did not answer in time."""


class SensorNoFinger(SensorTimeout):
    """The module passed its password check and answered, but no finger was laid on it in time."""


class SensorDisconnected(SensorError, SensorUnavailable):
    """The module's serial port cannot be opened, read or written (unplugged, cable cut, adapter gone)."""

    def __init__(self, port: str, reason: str) -> None:
        SensorUnavailable.__init__(self, f"fingerprint sensor on {port}", f"serial port unavailable ({reason}): "
                                   "unplugged or cable cut?")


class SensorProtocolError(SensorError):
    """The sensor answered something that is not a valid packet."""


class SensorAuthError(SensorError):
    """The module's password check (VfyPwd) failed: refused, not answered, or answered garbage.  On a paired
    module, treat it as a swapped, reset or disconnected module (tamper)."""


class SensorRefused(SensorError):
    """The sensor answered with a non-zero confirmation code."""

    def __init__(self, command: int, code: int) -> None:
        self.command, self.code = command, code
        super().__init__(f"sensor refused command 0x{command:02X}: {CONFIRMATION.get(code, 'error')} "
                         f"(code 0x{code:02X})")


class Pid(IntEnum):
    COMMAND = 0x01
    DATA = 0x02
    ACK = 0x07
    END = 0x08


class Command(IntEnum):
    GEN_IMG = 0x01
    IMG2TZ = 0x02
    MATCH = 0x03
    SEARCH = 0x04
    REG_MODEL = 0x05
    STORE = 0x06
    UP_IMAGE = 0x0A
    DOWN_IMAGE = 0x0B
    DELETE_CHAR = 0x0C
    EMPTY = 0x0D
    READ_SYS_PARA = 0x0F
    SET_PWD = 0x12
    VFY_PWD = 0x13
    TEMPLATE_NUM = 0x1D
    READ_PROD_INFO = 0x3C


OK = 0x00
NO_FINGER = 0x02
CONFIRMATION = {
    0x00: "ok", 0x01: "packet receive error", 0x02: "no finger on the sensor", 0x03: "image capture failed",
    0x06: "image too disorderly", 0x07: "too few features", 0x08: "fingers do not match",
    0x09: "no match in the library", 0x0A: "failed to combine the images", 0x0B: "page out of range",
    0x0F: "cannot upload the image", 0x13: "wrong password", 0x15: "no valid image in the buffer",
}


def checksum(pid: int, length: int, payload: bytes) -> int:
    return (pid + (length >> 8) + (length & 0xFF) + sum(payload)) & 0xFFFF


def encode(pid: int, payload: bytes, address: int = DEFAULT_ADDRESS) -> bytes:
    """One packet carrying `payload`."""
    length = len(payload) + 2
    return (HEADER + struct.pack(">IBH", address, pid, length) + payload
            + struct.pack(">H", checksum(pid, length, payload)))


@dataclass(frozen=True)
class Packet:
    pid: int
    address: int
    payload: bytes


def decode_header(head: bytes) -> tuple[int, int, int]:
    """(address, pid, length) of a 9-byte packet head; `SensorProtocolError` when it is not one."""
    if len(head) != 9 or head[:2] != HEADER:
        raise SensorProtocolError("bad packet header (expected 0xEF01)")
    address, pid, length = struct.unpack(">IBH", head[2:])
    if pid not in (Pid.COMMAND, Pid.DATA, Pid.ACK, Pid.END):
        raise SensorProtocolError(f"unknown packet id 0x{pid:02X}")
    if not 2 < length <= MAX_PAYLOAD + 2:
        raise SensorProtocolError(f"implausible packet length {length}")
    return address, pid, length


def decode_body(address: int, pid: int, length: int, body: bytes) -> Packet:
    """Check the checksum of a packet's body (payload + checksum) and return the packet."""
    payload, (received,) = body[:-2], struct.unpack(">H", body[-2:])
    if checksum(pid, length, payload) != received:
        raise SensorProtocolError("packet checksum mismatch")
    return Packet(pid, address, payload)


@dataclass(frozen=True)
class SystemParameters:
    """What ReadSysPara reports; part of the module's identity for the tamper binding."""

    status: int
    system_id: int
    library_size: int
    security_level: int
    address: int
    packet_size: int            # bytes per data packet
    baud: int

    @classmethod
    def parse(cls, data: bytes) -> SystemParameters:
        if len(data) < 16:
            raise SensorProtocolError("short system parameter block")
        status, system_id, size, level, address, packet_code, baud_n = struct.unpack(">HHHHIHH", data[:16])
        if packet_code > 3:
            raise SensorProtocolError("invalid packet size code")
        return cls(status, system_id, size, level, address, 32 << packet_code, 9600 * baud_n)

    def pack(self) -> bytes:
        code = {32: 0, 64: 1, 128: 2, 256: 3}[self.packet_size]
        return struct.pack(">HHHHIHH", self.status, self.system_id, self.library_size, self.security_level,
                           self.address, code, self.baud // 9600)
