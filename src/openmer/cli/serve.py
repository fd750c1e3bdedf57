"""``openmer serve``: the local service and review page (``docs/service.md``)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import typer

from openmer.cli.app import app
from openmer.cli.common import console, handle_errors

#: the environment variable a token may come from instead of ``--token``
TOKEN_ENV = "OPENMER_TOKEN"


def is_loopback(host: str) -> bool:
    """``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token: str | None) -> str | None:
    """The bearer token to ask for: ``token``, else ``$OPENMER_TOKEN``; ``None`` on a loopback address without one.

    Raises:
        ConfigError: a non-loopback ``host`` without a token (the service refuses to start), or a
            token shorter than 16 characters.
    """
    from openmer.errors import ConfigError

    token = token or os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(host):
        raise ConfigError(f"--host {host} makes the service reachable from other machines: give a bearer token "
                          f"(--token TOKEN or {TOKEN_ENV}=TOKEN); it refuses to start without one")
    if token is not None and len(token) < 16:
        raise ConfigError("the bearer token must have at least 16 characters")
    return token


@app.command("serve")
@handle_errors
def serve(
    runs: list[str] = typer.Argument(..., help="Run folders from `openmer train` or Hugging Face hub repo ids "
                                               "(owner/name); the first is the default."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; any but loopback needs a token."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    data_dir: Path = typer.Option(
        Path("openmer-data"), "--data-dir",
        help="Jobs, recordings, results and reviews (SQLite openmer.db); kept across restarts."),
    token: str | None = typer.Option(
        None, "--token", help=f"Bearer token every /v1 request must carry (or ${TOKEN_ENV})."),
    workers: int = typer.Option(2, "--workers", help="Threads that score uploads and timelines."),
    queue: int = typer.Option(16, "--queue", help="Requests admitted beyond the busy workers; then 503 + Retry-After."),
    max_upload_mb: float = typer.Option(500.0, "--max-upload-mb", help="Largest request body (MB); larger: 413."),
    max_duration_s: float = typer.Option(4 * 3600.0, "--max-duration-s", help="Longest recording (s); longer: 422."),
    cors_origin: list[str] = typer.Option(
        [], "--cors-origin", help="Allow this origin by CORS (repeatable; off by default)."),
    window: float = typer.Option(4.0, "--window", help="Timeline window length in seconds."),
    hop: float = typer.Option(2.0, "--hop", help="Seconds between timeline window starts."),
    profile: str | None = typer.Option(
        None, "--profile", help="The profile the runs were trained with, when not a built-in one (a JSON file)."),
) -> None:
    """A local HTTP service and a review page (http://HOST:PORT/): predictions, timelines of
    recordings, and reviews of their segments, kept in --data-dir."""
    import uvicorn

    from openmer.service import ServiceConfig, create_app
    from openmer.timeline import TimelineConfig

    bearer = resolve_token(host, token)
    prof = None
    if profile is not None:
        from openmer.backbones import ProfileConfig, profile_config

        prof = ProfileConfig.from_json(Path(profile)) if profile.endswith(".json") else profile_config(profile)
    from openmer.hub import resolve_run

    config = ServiceConfig(runs=[resolve_run(r) for r in runs], data_dir=data_dir, token=bearer, workers=workers,
                           queue=queue,
                           max_upload_mb=max_upload_mb, max_duration_s=max_duration_s, cors_origins=list(cors_origin),
                           profile=prof, timeline=TimelineConfig(window=window, hop=hop))
    application = create_app(config)
    console.print(f"openmer serve: http://{host}:{port}/ ({', '.join(application.state.runs)}; data in {data_dir})",
                  highlight=False)
    uvicorn.run(application, host=host, port=port, log_level="warning")


@app.command("bench-serve")
@handle_errors
def bench_serve_command(
    run_dir: Path = typer.Argument(..., help="A run folder from `openmer train`."),
    requests: int = typer.Option(400, "--requests", help="Requests in all (predictions, malformed, timelines)."),
    clients: int = typer.Option(8, "--clients", help="Concurrent clients."),
    malformed: float = typer.Option(0.1, "--malformed", help="Share of malformed uploads."),
    timelines: int = typer.Option(3, "--timelines", help="Timeline jobs among the requests."),
    workers: int = typer.Option(2, "--workers", help="The service's --workers."),
    max_seconds: float = typer.Option(900.0, "--max-seconds", help="No request starts after this many seconds."),
    profile: str | None = typer.Option(None, "--profile", help="The run's profile JSON, when not a built-in one."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the numbers to this JSON file."),
) -> None:
    """Load a loopback `openmer serve` with concurrent clients on real EmoDB clips: latency
    percentiles, requests/s, 5xx (must be 0), peak memory, and equality with `openmer predict`."""
    import json

    from openmer.errors import OpenmerError
    from openmer.service.bench import bench_serve, format_report

    result = bench_serve(run_dir, requests=requests, clients=clients, malformed=malformed, timelines=timelines,
                         workers=workers, max_seconds=max_seconds, profile_file=profile,
                         log=lambda m: console.print(m, highlight=False))
    typer.echo(format_report(result))
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    if result["server_errors_5xx"] or result["mismatched"] or result["malformed_not_4xx"]:
        raise OpenmerError("bench-serve: a 5xx answer, a malformed upload not refused, or a prediction that "
                           "differs from `openmer predict` (see above)")
