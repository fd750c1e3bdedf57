"""`openmer bench-serve` (a benchmark, run by hand): registered, its malformed uploads are all
refused by the service's type check, and its report names every number."""

from __future__ import annotations

import random

import pytest
from typer.testing import CliRunner

from openmer.cli.app import app
from openmer.service.bench import _malformed, format_report
from openmer.service.uploads import UploadError, check_media


def test_bench_serve_is_registered():
    res = CliRunner().invoke(app, ["bench-serve", "--help"])
    assert res.exit_code == 0 and "--clients" in res.output and "--requests" in res.output


def test_every_malformed_upload_is_refused_by_decoding(tmp_path, emodb_wavs):
    rng = random.Random(0)
    for i in range(4):
        name, body = _malformed(i, emodb_wavs[:2], rng)
        (tmp_path / "f").write_bytes(body)
        with pytest.raises(UploadError) as err:
            check_media(tmp_path / "f", name, max_duration_s=100)
        assert err.value.status == 422 and err.value.message.startswith(name)


def test_report_says_every_number():
    r = {"requests_sent": 400, "requests_planned": 400, "predict": 357, "malformed": 40, "timeline_jobs": 3,
         "timeline_done": 3, "clients": 8, "workers": 2, "load_wall_s": 100.0,
         "latency_ms": {"p50": 1.0, "p95": 2.0, "p99": 3.0}, "predict_latency_ms": {"p50": 1.0, "p95": 2.0, "p99": 3.0},
         "requests_per_s": 4.0, "statuses": {"200": 357}, "server_errors_5xx": 0, "malformed_not_4xx": 0,
         "peak_rss_mb": 700.0, "predictions_equal_cli": 357, "predictions_checked": 357, "distinct_clips": 48,
         "mismatched": []}
    text = format_report(r)
    for part in ("p50 1.0", "p99 3.0", "requests/s 4.0", "5xx 0", "peak RSS 700.0 MB", "357 of 357"):
        assert part in text
