"""What ``openmer discover`` reads: media files or folders, a manifest, or a timeline folder.

Each becomes a :class:`~openmer.data.manifest.Manifest` of clips (whole files, manifest rows, or
the ``unknown`` segments of a timeline written by ``openmer timeline``, ``docs/timeline.md``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from openmer.data.manifest import Manifest, Sample
from openmer.errors import DataError, MediaError
from openmer.media.audio import AUDIO_SUFFIXES, VIDEO_SUFFIXES
from openmer.methods.threshold import UNKNOWN_LABEL

__all__ = ["MANIFEST_SUFFIXES", "clip_manifest", "cluster_manifest", "is_cluster_spec", "is_timeline",
           "timeline_manifest"]

MANIFEST_SUFFIXES = (".csv", ".jsonl")
#: the files of a timeline folder read here (``openmer.timeline``: segments.json, timeline.json)
SEGMENTS_JSON, STATE_JSON = "segments.json", "timeline.json"


def is_timeline(path: Path) -> bool:
    """Whether ``path`` is a folder written by ``openmer timeline`` (it holds segments.json and timeline.json)."""
    return path.is_dir() and (path / SEGMENTS_JSON).is_file() and (path / STATE_JSON).is_file()


def _media_sample(file: Path, sid: str, start: float | None = None, end: float | None = None) -> Sample:
    """A row for one media file (a file with a video stream is read as video, its audio track too;
    a sidecar ``<name>.txt`` is its transcript)."""
    from openmer.media import load_text, probe

    info = probe(file)  # MediaError naming the file
    sidecar = file.with_suffix(".txt")
    text = None
    if start is None and sidecar.is_file():
        try:
            text = load_text(sidecar)
        except MediaError:
            text = None
    return Sample(id=sid, video=str(file) if info.has_video else None, audio=None if info.has_video else str(file),
                  text=text, start=start, end=end)


def timeline_manifest(folder: str | Path) -> Manifest:
    """The ``unknown`` segments of a timeline folder as clips of its recording.

    Raises:
        DataError: ``segments.json`` / ``timeline.json`` unreadable or not as ``openmer timeline``
            writes them, or the recording is gone (naming the file).
    """
    folder = Path(folder)
    try:
        state = json.loads((folder / STATE_JSON).read_text(encoding="utf-8"))
        rows = json.loads((folder / SEGMENTS_JSON).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(folder, f"not a readable timeline folder ({exc})") from exc
    if not isinstance(state, dict) or "recording" not in state or not isinstance(rows, list):
        raise DataError(folder / SEGMENTS_JSON, "not written by `openmer timeline` (no recording or segment list)")
    recording = Path(state["recording"])
    if not recording.is_file():
        raise DataError(folder / STATE_JSON, f"its recording {recording} does not exist any more")
    samples = []
    for r in rows:
        if isinstance(r, dict) and r.get("label") == UNKNOWN_LABEL:
            s, e = float(r["start_s"]), float(r["end_s"])
            samples.append(_media_sample(recording, f"{recording.name}@{s:.2f}-{e:.2f}", s, e))
    return Manifest(samples, root=Path("/"), name=folder.name, source=folder / SEGMENTS_JSON)


def clip_manifest(paths: Sequence[str | Path]) -> tuple[Manifest, list[dict[str, str]]]:
    """The clips ``paths`` name: one manifest file (``.csv``/``.jsonl``), one timeline folder, or
    media files and folders of them (each file one clip).

    Returns:
        ``(manifest, skipped)``: the clips, and ``{"file", "error"}`` per path that gave none (a file
        that cannot be read costs nothing else).

    Raises:
        DataError: no path given, or a manifest / timeline folder that cannot be read.
    """
    items = [Path(p) for p in paths]
    if not items:
        raise DataError(None, "no clips given: name media files, a folder, a manifest or a timeline folder")
    if len(items) == 1 and items[0].is_file() and items[0].suffix.lower() in MANIFEST_SUFFIXES:
        return Manifest.read(items[0], allow_outside_root=True), []
    if len(items) == 1 and is_timeline(items[0]):
        return timeline_manifest(items[0]), []
    samples, skipped = [], []
    suffixes = AUDIO_SUFFIXES | VIDEO_SUFFIXES
    for p in items:
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in suffixes)
            if not files:
                skipped.append({"file": str(p), "error": f"{p}: folder contains no media file"})
        elif p.is_file():
            files = [p]
        else:
            skipped.append({"file": str(p), "error": f"{p}: no such file or folder"})
            continue
        for f in files:
            try:
                samples.append(_media_sample(f.resolve(), str(f.resolve())))
            except DataError as exc:
                skipped.append({"file": str(f), "error": str(exc)})
    return Manifest(samples, root=Path("/"), name="discover"), skipped


def cluster_manifest(spec: str) -> Manifest:
    """The members of a cluster found by ``openmer discover``: ``DIR#N`` or ``DIR/clusters.json#N``
    (cluster ``N`` of the discovery written to ``DIR``).

    Raises:
        DataError: ``clusters.json`` unreadable, or it has no cluster ``N`` (the message lists them).
    """
    where, _, number = spec.rpartition("#")
    path = Path(where)
    if path.is_dir():
        path = path / "clusters.json"
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        clusters = {int(c["cluster"]): c for c in body["clusters"]}
        wanted = int(number)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DataError(path, f"not a readable discovery (clusters.json) with cluster {number!r} ({exc})") from exc
    if wanted not in clusters:
        raise DataError(path, f"has no cluster {wanted}; its clusters: {sorted(clusters)}")
    samples = []
    for m in clusters[wanted]["members"]:
        file = m.get("file")
        if not file:
            raise DataError(path, f"member {m.get('id')!r} of cluster {wanted} names no media file")
        samples.append(_media_sample(Path(file), str(m["id"]), m.get("start_s"), m.get("end_s")))
        if m.get("text"):
            samples[-1] = replace(samples[-1], text=m["text"])
    return Manifest(samples, root=Path("/"), name=f"cluster {wanted}", source=path)


def is_cluster_spec(text: str) -> bool:
    """Whether an argument names a discovered cluster (``DIR#N`` / ``clusters.json#N``)."""
    where, sep, number = text.rpartition("#")
    return bool(sep) and number.isdigit() and (Path(where).is_dir() or Path(where).name == "clusters.json")
