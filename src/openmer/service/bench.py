"""``openmer bench-serve``: load on a real ``openmer serve`` over loopback (a benchmark, not a test).

It starts ``openmer serve RUN`` in a child process on a free 127.0.0.1 port with a temporary data
folder, and sends ``requests`` requests from ``clients`` concurrent clients: ``/v1/predict`` with
one real 2-4 s clip each (EmoDB's, from ``../shared``), a share of malformed uploads (random bytes,
a WAV cut inside its header, text, an empty file; each must get a 4xx), and a few ``/v1/timeline`` jobs
(recordings of about 25 s built from the clips; each must finish ``done``). Bounded in count and in
time (``max_seconds``: no request starts after it).

Reported: latency p50/p95/p99 (all requests, and predictions alone), requests per second over the
load phase, statuses, the count of 5xx (must be 0), the server's peak resident memory (``VmHWM``
of its process), and whether every well-formed prediction equals what ``openmer predict`` prints
for the same file (the CLI run in a child process afterwards; ``file`` aside).
"""

from __future__ import annotations

import json
import os
import queue
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openmer.errors import ConfigError, OpenmerError


@dataclass
class _Request:
    kind: str  # predict, malformed, timeline
    name: str
    body: bytes


def emodb_clips(low: float = 2.0, high: float = 4.0, limit: int = 48) -> list[Path]:
    """EmoDB clips of ``low``-``high`` seconds from the shared folder, by name (at most ``limit``)."""
    import soundfile as sf

    from openmer.paths import require_shared

    wav = require_shared("data/emodb/wav", "EmoDB's clips")
    found = [p for p in sorted(wav.glob("*.wav")) if low <= sf.info(str(p)).duration <= high]
    return found[:limit]


def _recording(clips: list[Path], seed: int) -> bytes:
    import io

    import soundfile as sf

    from openmer.media import load_audio

    rng = random.Random(seed)
    parts = []
    for p in rng.sample(clips, min(8, len(clips))):
        parts += [load_audio(p), np.zeros(8000, np.float32)]
    buf = io.BytesIO()
    sf.write(buf, np.concatenate(parts), 16000, format="WAV")
    return buf.getvalue()


def _malformed(i: int, clips: list[Path], rng: random.Random) -> tuple[str, bytes]:
    kind = i % 4
    if kind == 0:
        return f"noise-{i}.wav", rng.randbytes(20000)
    if kind == 1:
        return f"truncated-{i}.wav", clips[i % len(clips)].read_bytes()[:30]  # cut inside its header
    if kind == 2:
        return f"notes-{i}.mp3", b"not audio at all\n" * 200
    return f"empty-{i}.wav", b""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def bench_serve(run_dir: str | Path, *, clips: list[Path] | None = None, requests: int = 400, clients: int = 8,
                malformed: float = 0.1, timelines: int = 3, workers: int = 2, max_seconds: float = 900.0,
                profile_file: str | None = None, seed: int = 0,
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the benchmark (see the module doc) and return its numbers.

    Raises:
        ConfigError: counts that cannot work; OpenmerError: the service did not start (its log's tail).
    """
    import httpx

    if not (requests >= 1 and clients >= 1 and 0 <= malformed < 1 and 0 <= timelines < requests):
        raise ConfigError("bench-serve: requests >= 1, clients >= 1, 0 <= malformed < 1, 0 <= timelines < requests")
    clips = clips or emodb_clips()
    if not clips:
        raise ConfigError("bench-serve: no clip to send")
    rng = random.Random(seed)
    n_bad = round(requests * malformed)
    n_pred = requests - n_bad - timelines
    plan = [_Request("predict", clips[i % len(clips)].name, clips[i % len(clips)].read_bytes()) for i in range(n_pred)]
    plan += [_Request("malformed", *_malformed(i, clips, rng)) for i in range(n_bad)]
    plan += [_Request("timeline", f"session-{i}.wav", _recording(clips, seed + i)) for i in range(timelines)]
    rng.shuffle(plan)
    by_name = {p.name: p for p in clips}

    with tempfile.TemporaryDirectory(prefix="openmer-bench-serve-") as tmp:
        port = _free_port()
        args = [sys.executable, "-m", "openmer", "serve", str(run_dir), "--host", "127.0.0.1", "--port", str(port),
                "--data-dir", str(Path(tmp) / "data"), "--workers", str(workers),
                "--queue", str(clients + timelines + 4)]
        if profile_file:
            args += ["--profile", profile_file]
        log_path = Path(tmp) / "serve.log"
        env = {**os.environ, "OPENMER_TOKEN": ""}
        with log_path.open("wb") as log_fh:
            proc = subprocess.Popen(args, stdout=log_fh, stderr=subprocess.STDOUT, env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            t_start = time.monotonic()
            while True:
                if proc.poll() is not None or time.monotonic() - t_start > 300:
                    raise OpenmerError(f"openmer serve did not start: {log_path.read_text()[-2000:]}")
                try:
                    if httpx.get(url + "/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.3)
            log(f"service up after {time.monotonic() - t_start:.1f} s; {len(plan)} requests from {clients} clients")
            results = _load(url, plan, clients, max_seconds, log)
            peak = _peak_rss_mb(proc.pid)
            jobs = [r["body"]["id"] for r in results if r["kind"] == "timeline" and r["status"] == 202]
            job_states = _wait_jobs(url, jobs, max_seconds)
            peak = max(filter(None, [peak, _peak_rss_mb(proc.pid)]), default=None)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    good = [r for r in results if r["kind"] == "predict" and r["status"] == 200]
    used = sorted({r["name"] for r in good})
    cli = _cli_predictions(run_dir, [by_name[n] for n in used], profile_file)
    mismatched = [r["name"] for r in good
                  if {k: v for k, v in r["body"]["results"][0].items() if k != "file"} != cli.get(r["name"])]
    lat = np.array([r["latency"] for r in results])
    pred_lat = np.array([r["latency"] for r in results if r["kind"] == "predict"])
    wall = max((r["end"] for r in results), default=0.0) - min((r["start"] for r in results), default=0.0)
    statuses: dict[str, int] = {}
    for r in results:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1

    def pct(a: np.ndarray) -> dict[str, float]:
        return {f"p{q}": round(float(np.percentile(a, q)) * 1000, 1) for q in (50, 95, 99)} if a.size else {}

    return {
        "requests_planned": len(plan), "requests_sent": len(results), "clients": clients, "workers": workers,
        "predict": sum(r["kind"] == "predict" for r in results),
        "malformed": sum(r["kind"] == "malformed" for r in results),
        "timeline_jobs": len(jobs), "timeline_done": sum(s == "done" for s in job_states.values()),
        "latency_ms": pct(lat), "predict_latency_ms": pct(pred_lat),
        "requests_per_s": round(len(results) / wall, 2) if wall > 0 else None, "load_wall_s": round(wall, 1),
        "statuses": statuses, "server_errors_5xx": sum(r["status"] >= 500 or r["status"] == 0 for r in results),
        "malformed_not_4xx": sum(r["kind"] == "malformed" and not 400 <= r["status"] < 500 for r in results),
        "peak_rss_mb": None if peak is None else round(peak, 1),
        "predictions_checked": len(good), "distinct_clips": len(used),
        "predictions_equal_cli": len(good) - len(mismatched), "mismatched": mismatched[:10],
    }


def _load(url: str, plan: list[_Request], clients: int, max_seconds: float,
          log: Callable[[str], None]) -> list[dict[str, Any]]:
    import httpx

    todo: queue.Queue[_Request] = queue.Queue()
    for p in plan:
        todo.put(p)
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds

    def client() -> None:
        with httpx.Client(base_url=url, timeout=max_seconds) as http:
            while time.monotonic() < deadline:
                try:
                    req = todo.get_nowait()
                except queue.Empty:
                    return
                path, field = ("/v1/timeline", "file") if req.kind == "timeline" else ("/v1/predict", "files")
                start = time.monotonic()
                try:
                    res = http.post(path, files={field: (req.name, req.body, "application/octet-stream")})
                    status, body = res.status_code, _json(res)
                except httpx.HTTPError as exc:
                    status, body = 0, {"error": type(exc).__name__}
                end = time.monotonic()
                with lock:
                    results.append({"kind": req.kind, "name": req.name, "status": status, "body": body,
                                    "latency": end - start, "start": start, "end": end})
                    if len(results) % 50 == 0:
                        log(f"{len(results)} of {len(plan)} requests answered")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _json(res: Any) -> Any:
    try:
        return res.json()
    except ValueError:
        return {"error": res.text[:200]}


def _wait_jobs(url: str, jobs: list[str], max_seconds: float) -> dict[str, str]:
    import httpx

    states: dict[str, str] = {}
    end = time.monotonic() + max_seconds
    while jobs and time.monotonic() < end:
        states = {j: httpx.get(f"{url}/v1/jobs/{j}", timeout=30).json()["state"] for j in jobs}
        if all(s in ("done", "failed") for s in states.values()):
            break
        time.sleep(0.5)
    return states


def _cli_predictions(run_dir: str | Path, files: list[Path], profile_file: str | None) -> dict[str, dict]:
    """What ``openmer predict RUN FILES`` prints, by file name (``file`` left out)."""
    if not files:
        return {}
    args = [sys.executable, "-m", "openmer", "predict", str(run_dir), *map(str, files)]
    if profile_file:
        args += ["--profile", profile_file]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    out = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            out[Path(rec.pop("file")).name] = rec
    return out


def format_report(r: dict[str, Any]) -> str:
    """The numbers of :func:`bench_serve` as a few lines of text."""
    lat, pl = r["latency_ms"], r["predict_latency_ms"]
    lines = [
        (f"requests {r['requests_sent']} of {r['requests_planned']} ({r['predict']} predict, "
         f"{r['malformed']} malformed, {r['timeline_jobs']} timeline jobs, {r['timeline_done']} done), "
         f"{r['clients']} clients, {r['workers']} workers, load phase {r['load_wall_s']} s"),
        f"latency ms (all):     p50 {lat.get('p50')}  p95 {lat.get('p95')}  p99 {lat.get('p99')}",
        f"latency ms (predict): p50 {pl.get('p50')}  p95 {pl.get('p95')}  p99 {pl.get('p99')}",
        (f"requests/s {r['requests_per_s']}; statuses {r['statuses']}; 5xx {r['server_errors_5xx']}; "
         f"malformed not answered 4xx {r['malformed_not_4xx']}"),
        f"server peak RSS {r['peak_rss_mb']} MB",
        (f"predictions equal to `openmer predict`: {r['predictions_equal_cli']} of {r['predictions_checked']} "
         f"({r['distinct_clips']} distinct clips)" + (f"; differ: {r['mismatched']}" if r["mismatched"] else "")),
    ]
    return "\n".join(lines)
