"""`limen serve` as a user starts it: prints the one-time setup link, then serves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_prints_a_setup_link_and_answers(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "LIMEN_DATA_DIR": str(tmp_path / "data")}
    command = [sys.executable, "-c", "from limen.cli import main; main()", "serve", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("/setup?token=" in line for line in lines):
            lines.append(proc.stdout.readline())
        link = next(line.strip() for line in lines if "/setup?token=" in line)
        assert link.startswith(f"http://127.0.0.1:{port}/setup?token=") and len(link.split("=")[1]) >= 40
        for _ in range(100):
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).json()
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert health == {"status": "ok", "setup_required": True}
        assert httpx.get(link, timeout=60).status_code == 200
        assert "openapi" in httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=60).json()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_sigterm_stops_serve_cleanly_and_removes_its_ram_directory(tmp_path: Path) -> None:
    """systemd stops the service with SIGTERM: uvicorn shuts down, then raises the signal again, and with the
    default action the process died before its `finally` (runtime closed, /dev/shm upload directory removed)."""
    ram = Path("/dev/shm")
    if not ram.is_dir():
        import pytest

        pytest.skip("no /dev/shm here")
    before = set(ram.glob("limen-*"))
    port = free_port()
    env = {**os.environ, "LIMEN_DATA_DIR": str(tmp_path / "data")}
    command = [sys.executable, "-c", "from limen.cli import main; main()", "serve", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        ours = set(ram.glob("limen-*")) - before
        assert ours, "serve made no RAM directory"
        proc.terminate()                                   # SIGTERM
        assert proc.wait(timeout=30) == 0                  # a clean stop, not death by the signal (-15)
        assert not any(d.exists() for d in ours)           # the finally ran: its directory is gone
    finally:
        if proc.poll() is None:
            proc.kill()
