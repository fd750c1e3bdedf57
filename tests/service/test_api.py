"""`openmer serve`'s API through FastAPI's test client: every endpoint and every refusal, with its
status code and message."""

from __future__ import annotations

import csv
import io
import threading

import pytest
from fastapi.testclient import TestClient

from openmer.data.manifest import Manifest
from openmer.errors import ConfigError
from openmer.inference import predict
from openmer.service import ServiceConfig, create_app
from openmer.timeline import TimelineConfig
from tests.service.conftest import session, wait_for

FAST = TimelineConfig(window=2.0, hop=1.0, group=4)


def _client(run, tmp_path, **options) -> TestClient:
    config = ServiceConfig(runs=[run], data_dir=tmp_path / "data", timeline=FAST, **options)
    return TestClient(create_app(config))


@pytest.fixture
def client(trained_run, tmp_path):
    with _client(trained_run, tmp_path) as c:
        yield c


def _files(*paths, field="files"):
    return [(field, (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]


def test_health_and_models_describe_the_run(client, trained_run):
    assert client.get("/health").json()["status"] == "ok"
    [model] = client.get("/v1/models").json()["models"]
    assert model["name"] == trained_run.name and model["method"] == "arpl"
    assert model["classes"] == ["happy", "sad"] and model["modalities"] == ["audio", "text"]
    assert 0 < model["threshold"]["acceptance"] <= 1 and model["threshold"]["source"] in ("train", "val")
    assert isinstance(model["threshold"]["value"], float) and "best_epoch" in model["metrics"]


def test_predict_equals_the_cli_and_a_bad_file_gets_its_own_error(client, trained_run, emodb_wavs, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF" + bytes(range(256)) * 8)
    good = emodb_wavs[:2]
    res = client.post("/v1/predict", files=_files(good[0], bad, good[1]), data={"transcript": "hallo"})
    assert res.status_code == 200, res.text
    out = res.json()["results"]
    assert [r["file"] for r in out] == [good[0].name, "broken.wav", good[1].name]
    assert out[1]["error"].startswith("broken.wav: not an audio or video file that can be decoded")
    expected = predict(trained_run, list(good), text="hallo")
    for got, want in zip([out[0], out[2]], expected, strict=True):
        assert {k: v for k, v in got.items() if k != "file"} == {k: v for k, v in want.items() if k != "file"}
    assert str(tmp_path) not in res.text and "/tmp" not in res.text  # no path of the server's


def test_predict_refusals(client, tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("this is text, not audio\n" * 50)
    res = client.post("/v1/predict", files=_files(text))
    assert res.status_code == 422
    assert res.json()["error"] == "no uploaded file could be scored"
    assert res.json()["results"][0]["error"].startswith("notes.wav: not an audio or video file")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    res = client.post("/v1/predict", files=_files(empty))
    assert res.json()["results"][0]["error"] == "empty.wav: empty file (0 bytes)"
    res = client.post("/v1/predict", data={"transcript": "x"}, files=[("other", ("a.txt", b"x"))])
    assert res.status_code == 400 and "multipart field 'files'" in res.json()["error"]
    res = client.post("/v1/predict", content=b"{}", headers={"content-type": "application/json"})
    assert res.status_code == 400 and "multipart/form-data" in res.json()["error"]
    res = client.post("/v1/predict?run=nope", files=_files(text))
    assert res.status_code == 404 and res.json()["error"].startswith("unknown run 'nope'; served: ")


def test_oversize_and_overlong_uploads_are_refused(trained_run, tmp_path, emodb_wavs):
    with _client(trained_run, tmp_path, max_upload_mb=0.01, max_duration_s=1.0) as c:
        res = c.post("/v1/predict", files=_files(emodb_wavs[0]))
        assert res.status_code == 413
        assert res.json()["error"] == "upload larger than the limit of 0.01 MB (--max-upload-mb)"
    with _client(trained_run, tmp_path / "b", max_duration_s=1.0) as c:
        res = c.post("/v1/timeline", files=_files(emodb_wavs[0], field="file"))
        assert res.status_code == 422 and "s is longer than the limit of 1 s (--max-duration-s)" in res.json()["error"]
        assert not list((tmp_path / "b" / "data" / "tmp").iterdir())  # the upload is gone


def test_a_body_streamed_past_the_limit_is_cut_off_with_413(trained_run, tmp_path, emodb_wavs):
    body = emodb_wavs[0].read_bytes()

    def chunks():  # no Content-Length: the limit is enforced while streaming
        for i in range(0, len(body), 4096):
            yield body[i: i + 4096]

    with _client(trained_run, tmp_path, max_upload_mb=0.01) as c:
        boundary = "xyz"
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.wav\"\r\n\r\n").encode()

        def stream():
            yield head
            yield from chunks()
            yield f"\r\n--{boundary}--\r\n".encode()

        res = c.post("/v1/predict", content=stream(),
                     headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        assert res.status_code == 413 and "0.01 MB" in res.json()["error"]


def test_timeline_job_review_and_export(client, trained_run, emodb_wavs, tmp_path):
    rec = session(tmp_path / "talk.wav", emodb_wavs[:4])
    res = client.post("/v1/timeline", files=_files(rec, field="file"))
    assert res.status_code == 202, res.text
    job_id = res.json()["id"]
    assert res.json()["state"] in ("queued", "running") and res.headers["location"] == f"/v1/jobs/{job_id}"
    job = wait_for(client, job_id)
    assert job["state"] == "done" and job["progress"] == 1.0, job["error"]
    result = job["result"]
    assert result["classes"] == ["happy", "sad"] and result["windows"] and result["segments"]
    w = result["windows"][0]
    assert {"t0", "t1", "confidence", "probabilities", "scored", "label"} <= set(w)
    seg = result["segments"][0]
    assert seg["w0"] < seg["w1"] <= len(result["windows"])
    media = client.get(f"/v1/jobs/{job_id}/media", headers={"range": "bytes=0-99"})
    assert media.status_code == 206 and media.headers["content-type"] == "audio/wav" and len(media.content) == 100

    url = f"/v1/jobs/{job_id}/segments/0/review"
    assert client.post(url, json={"label": "happy", "note": "laughs"}).json()["kind"] == "known"
    assert client.post(f"/v1/jobs/{job_id}/segments/1/review", json={"label": "Contempt"}).json()["label"] == "contempt"
    res = client.post(url, json={"label": "unknown"})
    assert res.status_code == 422 and "give a known class (happy, sad), a new emotion word" in res.json()["error"]
    res = client.post(f"/v1/jobs/{job_id}/segments/999/review", json={"label": "happy"})
    assert res.status_code == 404 and "has no segment 999" in res.json()["error"]
    assert client.post(url, content=b"not json").status_code == 400
    assert client.post(url, json={"label": "not an emotion"}).json()["kind"] == "not_emotion"
    reviews = client.get(f"/v1/jobs/{job_id}").json()["reviews"]
    assert [(r["segment"], r["label"]) for r in reviews] == [(0, "not an emotion"), (1, "contempt")]

    text = client.get("/v1/reviews/export").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["label"] for r in rows] == ["not an emotion", "contempt"] and rows[0]["group"] == job_id
    assert float(rows[0]["start"]) == seg["start_s"]
    data_dir = tmp_path / "data"
    manifest = Manifest.read(data_dir / "reviews.csv")  # what `openmer train --data` reads, as it is
    assert [s.label for s in manifest] == ["not an emotion", "contempt"]
    assert manifest[0].audio is not None and manifest[0].start == seg["start_s"]
    exported = client.get("/v1/reviews/export?format=json").json()["rows"]
    assert exported[1]["recording"] == "talk.wav" and exported[1]["kind"] == "new"


def test_unknown_job_and_refused_states(client):
    for path in ("/v1/jobs/0123", "/v1/jobs/" + "a" * 32, "/v1/jobs/" + "a" * 32 + "/media"):
        res = client.get(path)
        assert res.status_code == 404 and res.json()["error"].startswith("unknown job ")
    res = client.post("/v1/jobs/" + "b" * 32 + "/resume")
    assert res.status_code == 404
    assert client.get("/v1/nothing").json()["error"] == "no such path: /v1/nothing"


def test_a_corrupt_recording_and_a_broken_transcript_are_422(client, emodb_wavs, tmp_path):
    junk = tmp_path / "rec.mp4"
    junk.write_bytes(bytes(range(256)) * 40)
    res = client.post("/v1/timeline", files=_files(junk, field="file"))
    assert res.status_code == 422 and res.json()["error"].startswith("rec.mp4: not an audio or video file")
    subs = tmp_path / "talk.srt"
    subs.write_text("1\nnot a time\nhello\n")
    res = client.post("/v1/timeline", files=[*_files(emodb_wavs[0], field="file"), *_files(subs, field="transcript")])
    assert res.status_code == 422 and res.json()["error"].startswith("talk.srt")
    assert client.get("/v1/jobs").json()["jobs"] == []  # nothing half-made is left


def test_a_full_queue_is_503_with_retry_after(trained_run, tmp_path, emodb_wavs):
    with _client(trained_run, tmp_path, workers=1, queue=0) as c:
        release = threading.Event()
        c.app.state.pool.submit(release.wait)  # the one worker is busy
        try:
            res = c.post("/v1/predict", files=_files(emodb_wavs[0]))
            assert res.status_code == 503 and res.headers["retry-after"] == "5"
            assert res.json()["error"] == "all 1 worker(s) are busy and 0 request(s) wait; retry in 5 s"
            res = c.post("/v1/timeline", files=_files(emodb_wavs[0], field="file"))
            assert res.status_code == 503 and c.get("/v1/jobs").json()["jobs"] == []
        finally:
            release.set()


def test_a_token_is_required_when_set(trained_run, tmp_path):
    token = "s3cret-token-0123456789"
    with _client(trained_run, tmp_path, token=token) as c:
        res = c.get("/v1/models")
        assert res.status_code == 401 and res.json()["error"].startswith("missing or wrong bearer token")
        assert c.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/v1/models", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert c.get("/health").status_code == 200 and c.get("/").status_code == 200  # no data there


def test_non_loopback_host_needs_a_token(monkeypatch):
    from openmer.cli.serve import resolve_token

    monkeypatch.delenv("OPENMER_TOKEN", raising=False)
    assert resolve_token("127.0.0.1", None) is None and resolve_token("::1", None) is None
    with pytest.raises(ConfigError, match=r"--host 0\.0\.0\.0 makes the service reachable"):
        resolve_token("0.0.0.0", None)
    monkeypatch.setenv("OPENMER_TOKEN", "x" * 20)
    assert resolve_token("0.0.0.0", None) == "x" * 20


def test_cors_is_off_unless_asked(trained_run, tmp_path):
    with _client(trained_run, tmp_path) as c:
        assert "access-control-allow-origin" not in c.get("/health", headers={"Origin": "http://a.example"}).headers
    with _client(trained_run, tmp_path / "b", cors_origins=["http://a.example"]) as c:
        res = c.get("/health", headers={"Origin": "http://a.example"})
        assert res.headers["access-control-allow-origin"] == "http://a.example"


def test_an_unexpected_error_is_json_without_a_traceback(client, monkeypatch):
    import openmer.service.app as service_app

    def boom(*args, **kwargs):
        raise RuntimeError("secret internals /home/x")

    monkeypatch.setattr(service_app, "describe_run", boom)
    with TestClient(client.app, raise_server_exceptions=False) as c:
        res = c.get("/v1/models")
    assert res.status_code == 500 and res.json() == {"error": "internal error; see the service's log"}
