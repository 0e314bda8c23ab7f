"""A simulated R30x module on a pseudo-terminal, speaking the real protocol, fed with real images.

`SimulatedR30x(images)` opens a pty pair and answers on the master side in a
thread; `.port` is the slave device path to give to `R30xSensor` (or to
`limen serve --simulate-sensors`).  Each GenImg takes the next image of the
queue (none left = "no finger"); images are centre-cropped/padded to 256 × 288
and sent at 4 bits per pixel, as the module does.  Match on sensor uses Limen's
own extractor and matcher in place of the module's firmware (simulated).
Faults for tests: `garbage=True` answers noise, `silent=True` never answers,
`refuse_delete=True` answers DeleteChar with "failed to delete" (0x10) and Empty with "failed to clear" (0x11),
`unplug()` makes the module disappear (its pty is closed: the port cannot be opened, read or written any more).
`commands` lists the command codes received, in order (what crossed the wire, for tests).
"""

from __future__ import annotations

import os
import select
import struct
import threading
import tty
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from limen import thresholds as T
from limen.bio.finger import matcher
from limen.bio.finger.extract import extract
from limen.bio.finger.image import load_image
from limen.bio.finger.protocol import (
    DEFAULT_ADDRESS,
    DEFAULT_PASSWORD,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    Command,
    Pid,
    SensorProtocolError,
    SystemParameters,
    decode_body,
    decode_header,
    encode,
)
from limen.bio.finger.sensor import pack_image
from limen.errors import BadImage

SIMULATED_PARAMETERS = SystemParameters(status=0, system_id=0x0009, library_size=200, security_level=3,
                                        address=DEFAULT_ADDRESS, packet_size=128, baud=57600)
_MATCH_SCORE_ON_SENSOR = T.FINGER_MATCH_DEFAULT  # simulated firmware searching: a match at the lock's own point
_MERGE_SCORE_ON_SENSOR = T.FINGER_MATCH_FMR_1E3  # …and two enrolment impressions of one finger (RegModel)


def sensor_frame(image: np.ndarray) -> np.ndarray:
    """Centre-crop / pad (white) an image to the module's 288 × 256."""
    out = np.full((IMAGE_HEIGHT, IMAGE_WIDTH), 255, np.uint8)
    h, w = image.shape
    sy, sx = max((h - IMAGE_HEIGHT) // 2, 0), max((w - IMAGE_WIDTH) // 2, 0)
    crop = image[sy:sy + IMAGE_HEIGHT, sx:sx + IMAGE_WIDTH]
    oy, ox = (IMAGE_HEIGHT - crop.shape[0]) // 2, (IMAGE_WIDTH - crop.shape[1]) // 2
    out[oy:oy + crop.shape[0], ox:ox + crop.shape[1]] = crop
    return out


class SimulatedR30x:
    """The module's side of the wire, on the master end of a pty."""

    def __init__(self, images: Sequence[Path | np.ndarray] = (), password: int = DEFAULT_PASSWORD,
                 parameters: SystemParameters = SIMULATED_PARAMETERS, serial_number: bytes | None = None) -> None:
        self.password = password
        self.parameters = parameters
        self.serial_number = serial_number
        self.garbage = False
        self.silent = False
        self.refuse_delete = False
        self.commands: list[int] = []
        self._closed = False
        self._queue: deque[np.ndarray] = deque()
        for item in images:
            self.present(item)
        self._image: np.ndarray | None = None
        self._buffers: dict[int, matcher.PreparedTemplate | None] = {}
        self._library: dict[int, matcher.PreparedTemplate] = {}
        self._verified = False
        self._master, slave = os.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="simulated-r30x", daemon=True)
        self._thread.start()

    def present(self, image: Path | np.ndarray) -> None:
        """Queue a finger: the next GenImg captures it."""
        grey = load_image(image) if isinstance(image, Path) else image
        self._queue.append(sensor_frame(grey))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join(timeout=2)
        os.close(self._master)
        os.close(self._slave)

    def unplug(self) -> None:
        """The module disappears: its pty is closed (a scan cannot open, read or write the port)."""
        self.close()

    def __enter__(self) -> SimulatedR30x:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ wire
    def _read(self, n: int) -> bytes | None:
        data = b""
        while len(data) < n:
            ready, _, _ = select.select([self._master], [], [], 0.05)
            if self._stop.is_set():
                return None
            if ready:
                chunk = os.read(self._master, n - len(data))
                if not chunk:
                    return None
                data += chunk
        return data

    def _serve(self) -> None:
        while not self._stop.is_set():
            head = self._read(9)
            if head is None:
                return
            try:
                address, pid, length = decode_header(head)
                body = self._read(length)
                if body is None:
                    return
                packet = decode_body(address, pid, length, body)
            except SensorProtocolError:
                self._reply(b"\x01")                 # packet receive error, as the module does
                continue
            if self.silent or address != self.parameters.address:
                continue
            if self.garbage:
                os.write(self._master, bytes(np.random.default_rng().integers(0, 256, 12, dtype=np.uint8)))
                continue
            self._handle(packet.payload)

    def _reply(self, payload: bytes, pid: int = Pid.ACK) -> None:
        os.write(self._master, encode(pid, payload, self.parameters.address))

    # ------------------------------------------------------------------ firmware
    def _handle(self, payload: bytes) -> None:
        if payload[0] not in set(Command):
            self._reply(b"\x01")
            return
        command, args = Command(payload[0]), payload[1:]
        self.commands.append(command)
        if command == Command.VFY_PWD:
            self._verified = len(args) == 4 and struct.unpack(">I", args)[0] == self.password
            self._reply(b"\x00" if self._verified else b"\x13")
            return
        if not self._verified:
            self._reply(b"\x13")                      # every command needs a verified password first
            return
        handler = {
            Command.SET_PWD: self._set_password, Command.READ_SYS_PARA: self._sys_para,
            Command.READ_PROD_INFO: self._prod_info, Command.GEN_IMG: self._gen_img,
            Command.UP_IMAGE: self._up_image, Command.IMG2TZ: self._img2tz, Command.REG_MODEL: self._reg_model,
            Command.STORE: self._store, Command.SEARCH: self._search, Command.DELETE_CHAR: self._delete_char,
            Command.EMPTY: self._empty,
        }.get(command)
        if handler is None:
            self._reply(b"\x01")
        else:
            handler(args)

    def _set_password(self, args: bytes) -> None:
        self.password = struct.unpack(">I", args[:4])[0]
        self._reply(b"\x00")

    def _sys_para(self, args: bytes) -> None:
        self._reply(b"\x00" + self.parameters.pack())

    def _prod_info(self, args: bytes) -> None:
        if self.serial_number is None:
            self._reply(b"\x01")
        else:
            self._reply(b"\x00" + b"R503".ljust(16, b"\x00") + bytes(4) + self.serial_number[:8].ljust(8, b"\x00")
                        + bytes(18))

    def _gen_img(self, args: bytes) -> None:
        if not self._queue:
            self._reply(b"\x02")
            return
        self._image = self._queue.popleft()
        self._reply(b"\x00")

    def _up_image(self, args: bytes) -> None:
        if self._image is None:
            self._reply(b"\x15")
            return
        self._reply(b"\x00")
        data = pack_image(self._image)
        size = self.parameters.packet_size
        for start in range(0, len(data), size):
            last = start + size >= len(data)
            self._reply(data[start:start + size], Pid.END if last else Pid.DATA)

    def _img2tz(self, args: bytes) -> None:
        if self._image is None:
            self._reply(b"\x15")
            return
        try:
            self._buffers[args[0]] = matcher.prepare(extract(self._image))
        except BadImage:
            self._reply(b"\x07")
            return
        self._reply(b"\x00")

    def _reg_model(self, args: bytes) -> None:
        a, b = self._buffers.get(1), self._buffers.get(2)
        if a is None or b is None or matcher.similarity(a, b) < _MERGE_SCORE_ON_SENSOR:
            self._reply(b"\x0a")
            return
        self._reply(b"\x00")

    def _store(self, args: bytes) -> None:
        buffer_id, page = struct.unpack(">BH", args[:3])
        template = self._buffers.get(buffer_id)
        if template is None or page >= self.parameters.library_size:
            self._reply(b"\x0b")
            return
        self._library[page] = template
        self._reply(b"\x00")

    def _search(self, args: bytes) -> None:
        probe = self._buffers.get(args[0])
        if probe is None:
            self._reply(b"\x15")
            return
        scored = [(matcher.similarity(probe, t), page) for page, t in self._library.items()]
        best = max(scored, default=(0.0, 0))
        if best[0] < _MATCH_SCORE_ON_SENSOR:
            self._reply(b"\x09")
            return
        self._reply(b"\x00" + struct.pack(">HH", best[1], min(int(best[0] * 100), 0xFFFF)))

    def _delete_char(self, args: bytes) -> None:
        if len(args) < 4:
            self._reply(b"\x01")
            return
        page, count = struct.unpack(">HH", args[:4])
        if self.refuse_delete or count < 1 or page + count > self.parameters.library_size:
            self._reply(b"\x10")
            return
        for p in range(page, page + count):
            self._library.pop(p, None)
        self._reply(b"\x00")

    def _empty(self, args: bytes) -> None:
        if self.refuse_delete:
            self._reply(b"\x11")                  # "fail to clear finger library"
            return
        self._library.clear()
        self._reply(b"\x00")

    def pages(self) -> list[int]:
        """The pages of the simulated library that hold a model (for tests)."""
        return sorted(self._library)

    def swap_module(self, parameters: SystemParameters | None = None) -> None:
        """Simulate a swapped module: factory password and other parameters."""
        self.password = DEFAULT_PASSWORD
        self.parameters = parameters or replace(self.parameters, system_id=self.parameters.system_id + 1)
        self._verified = False
