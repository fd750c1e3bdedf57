"""A service killed (SIGKILL) during a timeline job and started again loses nothing: the finished
job and its reviews are intact, the interrupted job is marked and resumes to the end."""

from __future__ import annotations

import time

import httpx

from tests.service.conftest import Server, free_port, serve_args, session


def _wait(client: httpx.Client, job_id: str, until, timeout: float = 120.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if until(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id}: {job['state']} {job['progress']} after {timeout} s")


def test_sigkill_during_a_job_loses_nothing_and_the_job_resumes(tmp_path, trained_run, tiny_paper_profile,
                                                               emodb_wavs):
    short = session(tmp_path / "short.wav", emodb_wavs[:3])
    long = session(tmp_path / "long.wav", emodb_wavs[3:43], gap_s=0.5)  # about 2 minutes
    data = tmp_path / "data"
    port = free_port()
    args = serve_args(trained_run, tiny_paper_profile, data, port, "--window", "2", "--hop", "0.5", "--workers", "1")
    with Server(args, port, tmp_path / "serve.log").wait_ready() as server:
        client = httpx.Client(base_url=server.url, timeout=30)
        first = client.post("/v1/timeline", files={"file": ("short.wav", short.read_bytes())}).json()["id"]
        done = _wait(client, first, lambda j: j["state"] in ("done", "failed"))
        assert done["state"] == "done", done["error"]
        assert client.post(f"/v1/jobs/{first}/segments/0/review", json={"label": "sad", "note": "n"}).status_code == 200
        second = client.post("/v1/timeline", files={"file": ("long.wav", long.read_bytes())}).json()["id"]
        running = _wait(client, second, lambda j: j["state"] == "running" and j["done_s"] > 0)
        server.kill()
    assert 0 < running["progress"] < 1

    port = free_port()
    args = serve_args(trained_run, tiny_paper_profile, data, port, "--window", "2", "--hop", "0.5")
    with Server(args, port, tmp_path / "serve2.log").wait_ready() as server:
        client = httpx.Client(base_url=server.url, timeout=30)
        again = client.get(f"/v1/jobs/{first}").json()
        assert again["state"] == "done" and again["result"] == done["result"]
        assert [(r["segment"], r["label"], r["note"]) for r in again["reviews"]] == [(0, "sad", "n")]
        cut = client.get(f"/v1/jobs/{second}").json()
        assert cut["state"] == "interrupted" and cut["resumable"] and "resume it" in cut["error"]
        assert client.post(f"/v1/jobs/{first}/resume").status_code == 409
        res = client.post(f"/v1/jobs/{second}/resume")
        assert res.status_code == 202, res.text
        finished = _wait(client, second, lambda j: j["state"] in ("done", "failed"))
        assert finished["state"] == "done", finished["error"]
        assert finished["result"]["summary"]["resumed_from_window"] > 0  # the groups written before the kill are kept
        assert finished["result"]["summary"]["duration_s"] > 90
