"""Depth and infrared sources: Intel RealSense (live and recordings), Luxonis OAK-D, a UVC IR camera.

Every source returns a `Capture` whose frames carry colour, depth in
millimetres and IR, registered to the colour image (`register_to_colour`),
with the stream geometry and the device id.  Each SDK is imported only when
its source is opened; a missing SDK or device raises `SensorUnavailable`
naming the package and the device.  A camera that stops mid-burst ends the
capture early with `meta["stopped"]` set; PAD then judges only what it got
(fewer frames, or none: insufficient evidence), never a pass by default.

Recordings: librealsense writes ROS bags (`.db3`, rosbag2, from SDK 2.56;
`.bag` before); `write_realsense_recording` writes one from frames through
librealsense's software device, and `RealSenseSource(recording=…)` plays
either back through the same assembly code as a live camera.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from limen.capture.frames import Capture, Extrinsics, Frame, Intrinsics, StreamGeometry
from limen.errors import BadRequest, SensorUnavailable

REALSENSE = "Intel RealSense"
OAK = "Luxonis OAK-D"
UVC_IR = "UVC infrared camera"


@dataclass(frozen=True)
class DeviceInfo:
    """One device (or SDK) found by `list_devices`: `status` is "ready" or why it cannot be used."""

    kind: str
    device_id: str
    name: str
    status: str


class DepthSource(Protocol):
    """A source of multi-stream frames."""

    name: str

    def capture(self, frames: int) -> Capture:
        """Up to `frames` frames (fewer when the device stops: `meta["stopped"]`)."""
        ...


def sdk(package: str, device: str) -> ModuleType:
    """Import a camera SDK, or raise `SensorUnavailable` naming the package and device."""
    try:
        return importlib.import_module(package)
    except ImportError as exc:  # ModuleNotFoundError, or a missing system library (libusb)
        raise SensorUnavailable(device, f"SDK not importable: {exc}; install it with "
                                f"pip install 'limen[depth]'", package=package) from exc


def register_to_colour(depth_mm: np.ndarray, ir: np.ndarray | None,
                       geometry: StreamGeometry) -> tuple[np.ndarray, np.ndarray | None]:
    """Depth (and IR, which shares the depth camera's viewpoint) resampled onto the colour image.

    Each valid depth pixel is deprojected with the depth intrinsics, moved by
    the depth→colour extrinsics and projected with the colour intrinsics; the
    nearest surface wins where several land on one pixel.  Pixels nothing lands
    on are holes (0).  Returns float32 millimetres and IR of the colour size.
    """
    if geometry.depth is None:
        raise BadRequest("geometry.depth", "depth intrinsics are needed to register depth to colour")
    d, c = geometry.depth, geometry.colour
    if depth_mm.shape != (d.height, d.width):
        raise BadRequest("depth", f"shape {depth_mm.shape} does not match its intrinsics {d.height}×{d.width}")
    z = depth_mm.astype(np.float32)
    v, u = np.nonzero(z > 0)
    zz = z[v, u]
    pts = np.stack([(u - d.cx) / d.fx * zz, (v - d.cy) / d.fy * zz, zz], axis=1)
    r = np.asarray(geometry.depth_to_colour.rotation, dtype=np.float32).reshape(3, 3)
    t = np.asarray(geometry.depth_to_colour.translation, dtype=np.float32)
    pts = pts @ r.T + t
    front = pts[:, 2] > 0
    pts, v, u = pts[front], v[front], u[front]
    cu = np.round(pts[:, 0] / pts[:, 2] * c.fx + c.cx).astype(np.int64)
    cv = np.round(pts[:, 1] / pts[:, 2] * c.fy + c.cy).astype(np.int64)
    inside = (cu >= 0) & (cu < c.width) & (cv >= 0) & (cv < c.height)
    cu, cv, zc, v, u = cu[inside], cv[inside], pts[inside, 2], v[inside], u[inside]
    order = np.argsort(-zc)  # far first, so the nearest surface is written last and wins
    out = np.zeros((c.height, c.width), np.float32)
    out[cv[order], cu[order]] = zc[order]
    ir_out = None
    if ir is not None:
        if ir.shape[:2] != depth_mm.shape:
            raise BadRequest("ir", f"shape {ir.shape} does not match the depth image {depth_mm.shape}")
        ir_out = np.zeros((c.height, c.width), ir.dtype)
        ir_out[cv[order], cu[order]] = ir[v[order], u[order]]
    return out, ir_out


def assemble(colour: np.ndarray, depth_mm: np.ndarray | None, ir: np.ndarray | None, *, t: float,
             geometry: StreamGeometry, device: str, source: str, emitter_on: bool | None = None) -> Frame:
    """One `Frame` from raw streams: depth and IR registered to colour unless already aligned."""
    if depth_mm is not None and geometry.depth is not None and geometry.depth != geometry.colour:
        depth_mm, ir = register_to_colour(depth_mm, ir, geometry)
    return Frame(rgb=np.ascontiguousarray(colour), t=t, depth=depth_mm, ir=ir, source=source,
                 geometry=geometry, device=device, emitter_on=emitter_on)


# ---------------------------------------------------------------- Intel RealSense


def _rs_intrinsics(profile: Any) -> Intrinsics:
    i = profile.as_video_stream_profile().get_intrinsics()
    return Intrinsics(int(i.width), int(i.height), float(i.fx), float(i.fy), float(i.ppx), float(i.ppy))


def _rs_extrinsics(src: Any, dst: Any) -> Extrinsics:
    try:
        e = src.get_extrinsics_to(dst)
    except RuntimeError as exc:
        raise SensorUnavailable(REALSENSE, f"depth-to-colour extrinsics missing ({exc})",
                                package="pyrealsense2") from exc
    tx, ty, tz = (1000.0 * float(x) for x in e.translation)
    return Extrinsics(tuple(float(x) for x in e.rotation), (tx, ty, tz))


class RealSenseSource:
    """An Intel RealSense camera (`serial`, or the first one) or a recording (`recording=path`)."""

    name = REALSENSE

    def __init__(self, serial: str | None = None, recording: str | Path | None = None,
                 size: tuple[int, int] = (640, 480), fps: int = 30, timeout_ms: int = 1000) -> None:
        self.serial, self.recording, self.size, self.fps, self.timeout_ms = serial, recording, size, fps, timeout_ms

    def capture(self, frames: int) -> Capture:
        rs = sdk("pyrealsense2", REALSENSE)
        if self.recording is not None:
            return self._playback(rs, Path(self.recording), frames)
        return self._live(rs, frames)

    def _live(self, rs: Any, frames: int) -> Capture:
        ctx = rs.context()
        serials = [d.get_info(rs.camera_info.serial_number) for d in ctx.query_devices()]
        if not serials or (self.serial and self.serial not in serials):
            raise SensorUnavailable(f"{REALSENSE} {self.serial or ''}".strip(), "no such device connected",
                                    package="pyrealsense2")
        pipe, cfg = rs.pipeline(ctx), rs.config()
        cfg.enable_device(self.serial or serials[0])
        w, h = self.size
        cfg.enable_stream(rs.stream.depth, w, h, rs.format.z16, self.fps)
        cfg.enable_stream(rs.stream.infrared, 1, w, h, rs.format.y8, self.fps)
        cfg.enable_stream(rs.stream.color, w, h, rs.format.rgb8, self.fps)
        profile = pipe.start(cfg)
        try:
            depth_sensor = profile.get_device().first_depth_sensor()
            if depth_sensor.supports(rs.option.emitter_enabled):
                depth_sensor.set_option(rs.option.emitter_enabled, 1)
            scale = float(depth_sensor.get_depth_scale()) * 1000.0
            device = f"realsense:{self.serial or serials[0]}"
            out: list[Frame] = []
            stopped = ""
            for _ in range(frames):
                ok, fs = pipe.try_wait_for_frames(self.timeout_ms)
                if not ok:
                    stopped = f"no frames for {self.timeout_ms} ms after {len(out)} frame(s)"
                    break
                out.append(self._frame(rs, fs.get_color_frame(), fs.get_depth_frame(), fs.get_infrared_frame(1),
                                       scale, device, device))
        finally:
            pipe.stop()
        return _capture(out, device, stopped)

    def _playback(self, rs: Any, path: Path, frames: int) -> Capture:
        if not path.is_file():
            raise BadRequest("recording", f"{path}: no such file")
        ctx = rs.context()
        try:
            dev = ctx.load_device(str(path))
        except RuntimeError as exc:
            raise BadRequest("recording", f"{path}: not a RealSense recording ({exc})") from exc
        playback = dev.as_playback()
        playback.set_real_time(False)
        queue = rs.frame_queue(4 * frames + 16, keep_frames=True)
        sensors = list(dev.query_sensors())
        playback.pause()  # start every sensor before the first frame is read, or early frames are lost
        for s in sensors:
            s.open(s.get_stream_profiles())
            s.start(queue)
        playback.resume()
        by_number: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + max(5.0, frames * 0.5)
        try:
            while time.monotonic() < deadline:
                ok, f = queue.try_wait_for_frame(200)
                if not ok:
                    if playback.current_status() == rs.playback_status.stopped:
                        break
                    continue
                kind = str(f.get_profile().stream_type()).split(".")[-1]
                by_number.setdefault(int(f.get_frame_number()), {})[kind] = f
        finally:
            for s in sensors:
                s.stop()
                s.close()
        scale = 1.0
        for s in sensors:
            if s.supports(rs.option.depth_units):
                scale = float(s.get_option(rs.option.depth_units)) * 1000.0
        name = dev.get_info(rs.camera_info.serial_number) if dev.supports(rs.camera_info.serial_number) else path.name
        device = f"realsense:{name}"
        out: list[Frame] = []
        stopped = ""
        for number in sorted(by_number)[:frames]:
            streams = by_number[number]
            if "color" not in streams:
                stopped = f"frame {number} has no colour image"
                break
            out.append(self._frame(rs, streams["color"], streams.get("depth"), streams.get("infrared"), scale,
                                   device, f"{path}#{number}"))
        return _capture(out, device, stopped)

    @staticmethod
    def _frame(rs: Any, colour: Any, depth: Any, ir: Any, scale_mm: float, device: str, source: str) -> Frame:
        rgb = np.array(colour.get_data(), dtype=np.uint8)
        c_profile = colour.get_profile()
        geometry = StreamGeometry(colour=_rs_intrinsics(c_profile))
        depth_mm = ir_img = None
        if depth:
            d_profile = depth.get_profile()
            depth_mm = np.array(depth.get_data(), dtype=np.float32) * np.float32(scale_mm)
            d_intr = _rs_intrinsics(d_profile)
            geometry = StreamGeometry(colour=geometry.colour, depth=d_intr, ir=d_intr,
                                      depth_to_colour=_rs_extrinsics(d_profile, c_profile))
        if ir:
            ir_img = np.array(ir.get_data())
        emitter = None
        if depth and depth.supports_frame_metadata(rs.frame_metadata_value.frame_laser_power_mode):
            emitter = bool(depth.get_frame_metadata(rs.frame_metadata_value.frame_laser_power_mode))
        return assemble(rgb, depth_mm, ir_img, t=float(colour.get_timestamp()) / 1000.0, geometry=geometry,
                        device=device, source=source, emitter_on=emitter)


def write_realsense_recording(path: str | Path, frames: Iterable[Frame], *, depth_units_mm: float = 1.0,
                              fps: int = 30, device_id: str = "SIM0001") -> Path:
    """Write frames to a librealsense recording through its software device (colour, z16 depth, IR).

    All frames must share one size and geometry (colour intrinsics are used for
    every stream: the frames are already registered).  The suffix must be the
    one the installed SDK writes (`.db3` for librealsense ≥ 2.56).
    """
    rs = sdk("pyrealsense2", REALSENSE)
    items = list(frames)
    if not items:
        raise BadRequest("frames", "nothing to record")
    h, w = items[0].rgb.shape[:2]
    geometry = items[0].geometry or StreamGeometry(colour=Intrinsics(w, h, float(w), float(w), w / 2, h / 2))
    intr = rs.intrinsics()
    intr.width, intr.height = w, h
    intr.fx, intr.fy, intr.ppx, intr.ppy = (geometry.colour.fx, geometry.colour.fy, geometry.colour.cx,
                                            geometry.colour.cy)
    intr.model, intr.coeffs = rs.distortion.none, [0.0] * 5
    dev = rs.software_device()
    dev.register_info(rs.camera_info.name, "Limen simulator")
    dev.register_info(rs.camera_info.serial_number, device_id)
    depth_sensor, colour_sensor = dev.add_sensor("Stereo Module"), dev.add_sensor("RGB Camera")

    def stream(sensor: Any, kind: Any, fmt: Any, bpp: int, uid: int, index: int = 0) -> Any:
        v = rs.video_stream()
        v.type, v.index, v.uid, v.width, v.height, v.fps, v.bpp, v.fmt, v.intrinsics = (
            kind, index, uid, w, h, fps, bpp, fmt, intr)
        return sensor.add_video_stream(v)

    dp = stream(depth_sensor, rs.stream.depth, rs.format.z16, 2, 0)
    ip = stream(depth_sensor, rs.stream.infrared, rs.format.y8, 1, 1, 1)
    cp = stream(colour_sensor, rs.stream.color, rs.format.rgb8, 3, 2)
    depth_sensor.add_read_only_option(rs.option.depth_units, depth_units_mm / 1000.0)
    extr = rs.extrinsics()
    extr.rotation = list(geometry.depth_to_colour.rotation)
    extr.translation = [x / 1000.0 for x in geometry.depth_to_colour.translation]
    dp.register_extrinsics_to(cp, extr)
    same = rs.extrinsics()
    same.rotation, same.translation = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0]
    ip.register_extrinsics_to(dp, same)
    out = Path(path)
    recorder = rs.recorder(str(out), dev)
    depth_sensor.open([dp, ip])
    colour_sensor.open(cp)
    sink = rs.syncer()
    depth_sensor.start(sink)
    colour_sensor.start(sink)
    keep: list[np.ndarray] = []  # the SDK reads the pixels after on_video_frame returns
    for n, f in enumerate(items):
        if f.rgb.shape[:2] != (h, w):
            raise BadRequest("frames", f"frame {n} is {f.rgb.shape[:2]}, the first is {(h, w)}")
        depth = np.zeros((h, w), np.uint16) if f.depth is None else np.clip(
            np.round(f.depth / depth_units_mm), 0, 65535).astype(np.uint16)
        ir = np.zeros((h, w), np.uint8) if f.ir is None else np.clip(f.ir, 0, 255).astype(np.uint8)
        rgb = np.ascontiguousarray(f.rgb, dtype=np.uint8)
        keep += [depth, ir, rgb]
        for arr, prof, bpp, sensor in ((depth, dp, 2, depth_sensor), (ir, ip, 1, depth_sensor),
                                       (rgb, cp, 3, colour_sensor)):
            sf = rs.software_video_frame()
            sf.pixels, sf.stride, sf.bpp = arr, w * bpp, bpp
            sf.timestamp, sf.domain, sf.frame_number = f.t * 1000.0, rs.timestamp_domain.hardware_clock, n
            sf.profile = prof.as_video_stream_profile()
            sensor.on_video_frame(sf)
    for sensor in (depth_sensor, colour_sensor):
        sensor.stop()
        sensor.close()
    del recorder  # closes the file
    del keep
    return out


def record_realsense(path: str | Path, seconds: float, serial: str | None = None) -> Path:
    """Record a live RealSense camera (colour, depth, IR) to `path` for `seconds`."""
    rs = sdk("pyrealsense2", REALSENSE)
    pipe, cfg = rs.pipeline(), rs.config()
    if serial:
        cfg.enable_device(serial)
    cfg.enable_stream(rs.stream.depth, rs.format.z16, 30)
    cfg.enable_stream(rs.stream.infrared, 1, rs.format.y8, 30)
    cfg.enable_stream(rs.stream.color, rs.format.rgb8, 30)
    cfg.enable_record_to_file(str(path))
    try:
        pipe.start(cfg)
    except RuntimeError as exc:
        raise SensorUnavailable(REALSENSE, f"cannot start recording: {exc}", package="pyrealsense2") from exc
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pipe.wait_for_frames()
    finally:
        pipe.stop()
    return Path(path)


# ---------------------------------------------------------------- Luxonis OAK-D (DepthAI v3)


class OakSource:
    """A Luxonis OAK-D: stereo depth aligned to the colour camera, IR from the left mono camera.

    The IR dot projector / flood light (OAK-D Pro) is switched on when present.
    Written against the DepthAI v3 API; not exercised without a device.
    """

    name = OAK

    def __init__(self, size: tuple[int, int] = (640, 400), fps: int = 30, timeout_s: float = 1.0) -> None:
        self.size, self.fps, self.timeout_s = size, fps, timeout_s

    def capture(self, frames: int) -> Capture:
        dai = sdk("depthai", OAK)
        if not dai.Device.getAllAvailableDevices():
            raise SensorUnavailable(OAK, "no device connected", package="depthai")
        out: list[Frame] = []
        stopped = ""
        with dai.Pipeline() as pipeline:
            colour = pipeline.create(dai.node.Camera).build(dai.CameraBoardSocket.CAM_A)
            left = pipeline.create(dai.node.Camera).build(dai.CameraBoardSocket.CAM_B)
            right = pipeline.create(dai.node.Camera).build(dai.CameraBoardSocket.CAM_C)
            stereo = pipeline.create(dai.node.StereoDepth).build(left.requestOutput(self.size),
                                                                 right.requestOutput(self.size))
            stereo.setDepthAlign(dai.CameraBoardSocket.CAM_A)
            q_rgb = colour.requestOutput(self.size, type=dai.ImgFrame.Type.RGB888i).createOutputQueue()
            q_depth = stereo.depth.createOutputQueue()
            q_ir = stereo.rectifiedLeft.createOutputQueue()
            pipeline.start()
            device = pipeline.getDefaultDevice()
            emitter = bool(device.getIrDrivers())
            if emitter:
                device.setIrLaserDotProjectorIntensity(0.8)
            device_id = f"oak:{device.getDeviceId()}"
            w, h = self.size
            calib = device.readCalibration()
            m = calib.getCameraIntrinsics(dai.CameraBoardSocket.CAM_A, w, h)
            geometry = StreamGeometry(colour=Intrinsics(w, h, m[0][0], m[1][1], m[0][2], m[1][2]))
            geometry = replace(geometry, depth=geometry.colour, ir=geometry.colour)
            for _ in range(frames):
                msgs = [q.tryGet() for q in (q_rgb, q_depth, q_ir)]
                end = time.monotonic() + self.timeout_s
                while any(x is None for x in msgs) and time.monotonic() < end:
                    msgs = [x if x is not None else q.tryGet() for x, q in zip(msgs, (q_rgb, q_depth, q_ir),
                                                                                 strict=True)]
                    time.sleep(0.005)
                if any(x is None for x in msgs):
                    stopped = f"no frames for {self.timeout_s} s after {len(out)} frame(s)"
                    break
                rgb, depth, ir = (x.getFrame() for x in msgs)
                out.append(Frame(rgb=np.ascontiguousarray(rgb), t=msgs[0].getTimestamp().total_seconds(),
                                 depth=depth.astype(np.float32), ir=ir, source=device_id, geometry=geometry,
                                 device=device_id, emitter_on=emitter))
        return _capture(out, device_id, stopped)


# ---------------------------------------------------------------- UVC infrared camera (OpenCV)


class UvcInfraredSource:
    """A UVC near-infrared camera (850/940 nm, sold for face sign-in) with an optional colour camera.

    Without `colour_index` the IR image also fills `rgb` (grey): the texture
    cue then judges an IR image and the frames say so in `source`.  Most such
    cameras switch their illuminator with the stream; `emitter_on` is None
    because UVC does not report it.
    """

    name = UVC_IR

    def __init__(self, ir_index: int, colour_index: int | None = None) -> None:
        self.ir_index, self.colour_index = ir_index, colour_index

    def capture(self, frames: int) -> Capture:
        cv2 = sdk("cv2", UVC_IR)
        ir_cam = cv2.VideoCapture(self.ir_index)
        colour_cam = cv2.VideoCapture(self.colour_index) if self.colour_index is not None else None
        device = f"uvc:{self.ir_index}" + (f"+{self.colour_index}" if self.colour_index is not None else "")
        try:
            if not ir_cam.isOpened():
                raise SensorUnavailable(f"{UVC_IR} /dev/video{self.ir_index}", "cannot open the camera",
                                        package="opencv-python-headless")
            out: list[Frame] = []
            stopped = ""
            t0 = time.monotonic()
            for _ in range(frames):
                ok, ir = ir_cam.read()
                ok2, bgr = colour_cam.read() if colour_cam is not None else (True, None)
                if not ok or not ok2:
                    stopped = f"camera stopped after {len(out)} frame(s)"
                    break
                grey = ir if ir.ndim == 2 else cv2.cvtColor(ir, cv2.COLOR_BGR2GRAY)
                rgb = np.repeat(grey[:, :, None], 3, axis=2) if bgr is None else bgr[:, :, ::-1]
                h, w = grey.shape
                if rgb.shape[:2] != grey.shape:
                    rgb = cv2.resize(rgb, (w, h))
                source = device + ("#ir-as-rgb" if bgr is None else "")
                out.append(Frame(rgb=np.ascontiguousarray(rgb), t=time.monotonic() - t0, ir=grey, source=source,
                                 device=device))
        finally:
            ir_cam.release()
            if colour_cam is not None:
                colour_cam.release()
        return _capture(out, device, stopped)


def list_devices() -> list[DeviceInfo]:
    """Every depth/IR device the installed SDKs see, and a line for each SDK that is missing."""
    found: list[DeviceInfo] = []
    try:
        rs = sdk("pyrealsense2", REALSENSE)
        for d in rs.context().query_devices():
            found.append(DeviceInfo("realsense", d.get_info(rs.camera_info.serial_number),
                                    d.get_info(rs.camera_info.name), "ready"))
        if not any(d.kind == "realsense" for d in found):
            found.append(DeviceInfo("realsense", "", REALSENSE, "SDK installed, no device connected"))
    except SensorUnavailable as exc:
        found.append(DeviceInfo("realsense", "", REALSENSE, f"unavailable: install {exc.package}"))
    try:
        dai = sdk("depthai", OAK)
        devices = dai.Device.getAllAvailableDevices()
        found += [DeviceInfo("oak", d.getDeviceId(), OAK, "ready") for d in devices]
        if not devices:
            found.append(DeviceInfo("oak", "", OAK, "SDK installed, no device connected"))
    except SensorUnavailable as exc:
        found.append(DeviceInfo("oak", "", OAK, f"unavailable: install {exc.package}"))
    for video in sorted(Path("/dev").glob("video*")):
        found.append(DeviceInfo("uvc", video.name.removeprefix("video"), UVC_IR, "present (IR not verified)"))
    return found


def _capture(frames: list[Frame], device: str, stopped: str) -> Capture:
    if not frames:
        raise SensorUnavailable(device, f"no frames received ({stopped or 'stream empty'})")
    meta = {"device": device}
    if stopped:
        meta["stopped"] = stopped
    return Capture(tuple(frames), source=device, meta=meta)
