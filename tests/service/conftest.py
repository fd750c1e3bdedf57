"""Fixtures of the service tests: the tiny ARPL run of the CLI tests, real EmoDB clips, an app."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Self

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import SHARED

EMODB = SHARED / "data" / "emodb"


@pytest.fixture(scope="module")
def emodb_wavs() -> list[Path]:
    """Real EmoDB clips (about 2-4 s each), sorted by name."""
    if not (EMODB / "wav").is_dir():
        pytest.skip(f"needs {EMODB} (see shared/README.md)")
    return sorted((EMODB / "wav").glob("*.wav"))


def session(path: Path, wavs: list[Path], gap_s: float = 1.0) -> Path:
    """A recording made of ``wavs`` with ``gap_s`` of silence after each, written to ``path`` (16 kHz WAV)."""
    from openmer.media import load_audio

    parts = []
    for w in wavs:
        parts += [load_audio(w), np.zeros(int(gap_s * 16000), np.float32)]
    sf.write(path, np.concatenate(parts), 16000)
    return path


def wait_for(client, job_id: str, states=("done", "failed"), timeout: float = 60.0, headers=None) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers or {}).json()
        if job["state"] in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_args(run: Path, profile, data_dir: Path, port: int, *extra: str) -> list[str]:
    """The command line of ``openmer serve`` on ``run`` (with its profile file when the loader takes one)."""
    import inspect
    import sys

    from openmer.inference import load_run

    args = [sys.executable, "-m", "openmer", "serve", str(run), "--port", str(port), "--data-dir", str(data_dir),
            *extra]
    if "profile" in inspect.signature(load_run).parameters:
        profile_file = data_dir.parent / "profile.json"
        profile.to_json(profile_file)
        args += ["--profile", str(profile_file)]
    return args


class Server:
    """``openmer serve`` in a child process (its own process group), stopped on exit."""

    def __init__(self, args: list[str], port: int, log: Path):
        import os
        import subprocess

        self.port, self.log = port, log
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(args, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 90.0) -> Self:
        import urllib.request

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"openmer serve exited: {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"openmer serve not ready after {timeout} s: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except Exception:  # noqa: BLE001 - then it is killed
                self.kill()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
