"""Run a sandbox in its own process, as in ``make run``: for benchmarks, where a sandbox
in the measuring process would share its interpreter lock and skew the figures."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SandboxProcess:
    """``with SandboxProcess("hogia") as sandbox: sandbox.url``: started with the demo data."""

    def __init__(self, name: str, *, port: int | None = None, demo: bool = True):
        self.name = name
        self.port = port or free_port()
        self.demo = demo
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "SandboxProcess":
        command = [sys.executable, str(MANAGE), "sandbox", self.name, "--port", str(self.port)]
        if self.demo:
            command.append("--demo")
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} sandbox exited with {self.process.returncode}")
            try:
                requests.get(f"{self.url}/_sandbox/stats", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"{self.name} sandbox did not start within 30 s")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
