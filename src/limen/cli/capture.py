"""`limen capture list | record | inspect`: depth and infrared cameras and their recordings."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import cv2
import numpy as np
import typer

from limen.capture import Capture, Frame
from limen.capture import depth as sources
from limen.capture.folder import load_folder, save_folder
from limen.cli.common import output, progress
from limen.errors import BadRequest
from limen.lab import campaign as lab_campaign_eval
from limen.lab import pulse as lab_pulse_eval

capture_app = typer.Typer(help="Depth and infrared cameras: list, record, inspect.", no_args_is_help=True)


class Device(StrEnum):
    REALSENSE = "realsense"
    OAK = "oak"
    UVC = "uvc"


def register(app: typer.Typer) -> None:
    app.add_typer(capture_app, name="capture")


@capture_app.command("list")
def list_cmd() -> None:
    """Depth/IR devices the installed SDKs see (and which SDKs are missing)."""
    found = sources.list_devices()
    rows = [{"kind": d.kind, "id": d.device_id, "name": d.name, "status": d.status} for d in found]
    output(rows, "\n".join(f"{d.kind:10} {d.device_id or '-':16} {d.name:24} {d.status}" for d in found))


@capture_app.command("record")
def record(
    out: Annotated[Path, typer.Argument(help="RealSense: a recording file (.db3/.bag); others: a folder of PNGs.")],
    device: Annotated[Device, typer.Option(help="Which kind of camera.")] = Device.REALSENSE,
    seconds: Annotated[float, typer.Option(help="RealSense recording length.")] = 3.0,
    frames: Annotated[int, typer.Option(help="Frames to save (OAK-D, UVC).")] = 30,
    serial: Annotated[str | None, typer.Option(help="RealSense serial number (default: the first).")] = None,
    ir_index: Annotated[int, typer.Option(help="UVC: /dev/videoN of the IR camera.")] = 0,
    colour_index: Annotated[int | None, typer.Option(help="UVC: /dev/videoN of a colour camera.")] = None,
) -> None:
    """Record colour, depth (mm) and IR from a camera."""
    if device is Device.REALSENSE:
        path = sources.record_realsense(out, seconds, serial)
        output({"recording": str(path)}, f"recorded {seconds:g} s to {path}")
        return
    cap = _open(device, None, serial, ir_index, colour_index).capture(frames)
    written = save_frames(cap, out)
    output({"folder": str(out), "frames": written, "meta": cap.meta}, f"saved {written} frame(s) to {out}")


@capture_app.command("inspect")
def inspect(
    recording: Annotated[Path | None, typer.Argument(
        help="A RealSense recording or a folder `record` wrote (OAK-D, UVC); omit to read a live camera.")] = None,
    device: Annotated[Device, typer.Option(help="Live camera kind (without RECORDING).")] = Device.REALSENSE,
    frames: Annotated[int, typer.Option(help="Frames to read.")] = 10,
    out: Annotated[Path, typer.Option(help="Folder for depth and IR previews (PNG).")] = Path("capture-inspect"),
    serial: Annotated[str | None, typer.Option(help="RealSense serial number.")] = None,
    ir_index: Annotated[int, typer.Option(help="UVC: /dev/videoN of the IR camera.")] = 0,
    colour_index: Annotated[int | None, typer.Option(help="UVC: /dev/videoN of a colour camera.")] = None,
) -> None:
    """Per-stream statistics (holes, depth range, IR level) and PNG previews of depth and IR."""
    if frames < 1:
        raise BadRequest("--frames", "must be at least 1")
    if recording is not None and recording.is_dir():
        cap = load_folder(recording, frames)
    else:
        cap = _open(device, recording, serial, ir_index, colour_index).capture(frames)
    stats = describe(cap)
    previews = write_previews(cap.frames[len(cap.frames) // 2], out)
    output({"stats": stats, "previews": previews}, lambda: _print(stats, previews))


def describe(cap: Capture) -> dict[str, object]:
    """What a capture holds: frames, device(s), sizes, depth holes and range, IR level."""
    first = cap.frames[0]
    stats: dict[str, object] = {"frames": len(cap.frames), "devices": sorted({f.device for f in cap.frames}),
                                "size": list(first.size), **cap.meta}
    depths = [f.depth for f in cap.frames if f.depth is not None]
    if depths:
        d = np.stack(depths).astype(np.float32)
        valid = d[d > 0]
        stats["depth_frames"] = len(depths)
        stats["depth_hole_share"] = round(float((d <= 0).mean()), 4)
        if valid.size:
            stats["depth_mm_p5_p50_p95"] = [round(float(x), 1) for x in np.percentile(valid, [5, 50, 95])]
    irs = [f.ir for f in cap.frames if f.ir is not None]
    if irs:
        stats["ir_frames"] = len(irs)
        stats["ir_mean"] = round(float(np.mean([i.mean() for i in irs])), 2)
    return stats


def write_previews(frame: Frame, out: Path) -> dict[str, str]:
    """colour.png, depth.png (colour-mapped, holes black) and ir.png of one frame."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"colour": out / "colour.png"}
    cv2.imwrite(str(files["colour"]), frame.rgb[:, :, ::-1])
    if frame.depth is not None:
        d = frame.depth.astype(np.float32)
        valid = d > 0
        lo, hi = (np.percentile(d[valid], [2, 98]) if valid.any() else (0.0, 1.0))
        scaled = np.clip((d - lo) / max(hi - lo, 1.0) * 255, 0, 255).astype(np.uint8)
        coloured = cv2.applyColorMap(255 - scaled, cv2.COLORMAP_TURBO)
        coloured[~valid] = 0
        files["depth"] = out / "depth.png"
        cv2.imwrite(str(files["depth"]), coloured)
    if frame.ir is not None:
        ir = frame.ir.astype(np.float32)
        files["ir"] = out / "ir.png"
        cv2.imwrite(str(files["ir"]), np.clip(ir * (255.0 / max(float(ir.max()), 1.0)), 0, 255).astype(np.uint8))
    return {k: str(v) for k, v in files.items()}


def save_frames(cap: Capture, out: Path) -> int:
    """Each frame as NNNN_colour.png, NNNN_depth.png (uint16 mm), NNNN_ir.png, and frames.json (`load_folder`)."""
    return save_folder(cap, out)


def _open(device: Device, recording: Path | None, serial: str | None, ir_index: int,
          colour_index: int | None) -> sources.DepthSource:
    if recording is not None:
        if not recording.exists():
            raise BadRequest("recording", f"{recording}: no such file")
        return sources.RealSenseSource(recording=recording)
    if device is Device.REALSENSE:
        return sources.RealSenseSource(serial=serial)
    if device is Device.OAK:
        return sources.OakSource()
    return sources.UvcInfraredSource(ir_index, colour_index)


def _print(stats: dict[str, object], previews: dict[str, str]) -> None:
    for k, v in stats.items():
        typer.echo(f"{k:22} {v}")
    for k, v in previews.items():
        typer.echo(f"preview {k:14} {v}")


def lab_pulse(
    folder: Annotated[Path, typer.Argument(help="rppg-skin: <group>/videoN_<region>.avi and <group>_GT.csv.")],
    cache: Annotated[Path, typer.Option(help="Cache of per-frame skin colour (rerun in seconds).")]
    = Path("lab-out/pulse-cache"),
    controls: Annotated[bool, typer.Option(help="Also score shuffled frames and the no-video guess.")] = True,
) -> None:
    """Pulse (rPPG, POS and CHROM) on real skin: MAE, RMSE, share within 5 BPM, Pearson r and videos with a
    coherent pulse (permutation test) per region and group, with controls."""
    results = lab_pulse_eval.evaluate(folder, cache, permutation_test=True)
    summary = [("videos", s) for s in lab_pulse_eval.summarise(results)]
    if controls:
        shuffled = lab_pulse_eval.evaluate(folder, cache, shuffled=True)
        summary += [("shuffled frames", s) for s in lab_pulse_eval.summarise(shuffled)]
        summary += [("no video", s) for s in lab_pulse_eval.no_video_baseline(results)]
    rows = [{"input": kind, "method": s.method, "slice": s.slice, "videos": s.videos, "mae_bpm": round(s.mae, 2),
             "rmse_bpm": round(s.rmse, 2), "within_5_bpm": round(s.within_5, 3), "pearson_r": round(s.pearson_r, 3),
             "coherent": s.coherent} for kind, s in summary]
    videos = [{"group": r.group, "video": r.video, "region": r.region, "method": r.method,
               "truth": r.truth_bpm, "bpm": round(r.bpm, 1), "snr_db": round(r.snr_db, 2),
               "p_shuffled": round(r.p_shuffled, 3)} for r in results]

    def show() -> None:
        typer.echo(f"{folder}: {len(results) // 2} videos (real skin, development data; ground truth from the "
                   "set's CSVs; coherent = pulse beats its own shuffled frames, p ≤ 0.05)")
        typer.echo(f"{'input':16} {'method':8} {'slice':20} {'videos':>6} {'MAE BPM':>8} {'RMSE':>6} {'≤ 5 BPM':>8} "
                   f"{'r':>6} {'coherent':>8}")
        for kind, s in summary:
            typer.echo(f"{kind:16} {s.method:8} {s.slice:20} {s.videos:6d} {s.mae:8.2f} {s.rmse:6.2f} "
                       f"{100 * s.within_5:7.1f} % {s.pearson_r:6.2f} {s.coherent:8d}")

    output({"summary": rows, "videos": videos}, show)


def lab_campaign(
    out: Annotated[Path, typer.Option(help="Folder for report.html, summary.json and score files.")]
    = Path("lab-out/campaign"),
    count: Annotated[int, typer.Option(help="Simulated presentations per species.")] = 25,
    seed: Annotated[int, typer.Option(help="Population seed (calibration used seed 7; keep it different).")] = 1,
) -> None:
    """SIMULATED mask campaign: device profiles vs prints, screens and masks (ISO/IEC 30107-3 report)."""
    if count < 1:
        raise BadRequest("--count", "must be at least 1")
    with progress("simulating presentations", count * len(lab_campaign_eval.Species)) as advance:
        reports = lab_campaign_eval.run(count, seed, on_progress=advance)
    files = lab_campaign_eval.write_report(reports, out, count, seed)
    table = lab_campaign_eval.summary(reports)

    def show() -> None:
        typer.echo(f"SIMULATED campaign: {count} presentations per species, seed {seed}")
        typer.echo(f"{'profile':20} {'sil. enrol refused':>18} {'sil. verify rejected':>20} {'mask APCER max':>14} "
                   f"{'print/screen APCER':>18} {'BPCER':>7} {'sil. opens alone':>16}")
        for r in table:
            typer.echo(f"{r['profile']:20} {100 * r['silicone_enrolment_refused']:17.1f}% "
                       f"{100 * r['silicone_verification_rejected']:19.1f}% "
                       f"{100 * max(r['apcer_masks'].values()):13.1f}% "
                       f"{100 * max(r['apcer_prints_screens'].values()):17.1f}% {100 * r['bpcer']:6.1f}% "
                       f"{100 * r['silicone_opens_door_alone']:15.1f}%")
        for k, v in files.items():
            typer.echo(f"  {k}: {v}")

    output({"simulated": True, "profiles": table, "files": files}, show)
