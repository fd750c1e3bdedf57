"""Uploads: a multipart body streamed to a private temporary folder, with a size limit, and each
file's type checked by decoding its headers (PyAV, :func:`openmer.media.probe`), never by its name.

A client's file name is kept as a display string only: the file on disk is ``part-<n>`` inside a
folder made by :func:`tempfile.mkdtemp` (mode 0700), so no name a client sends becomes a path.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header

#: the longest client file name kept for display (characters)
MAX_NAME = 200
#: the most file parts one request may carry
MAX_FILES = 64
#: the longest plain (non-file) field, bytes
MAX_FIELD = 64 * 1024


class UploadError(Exception):
    """A request the service refuses, with the HTTP status and a message for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class UploadedFile:
    """One file part: ``name`` as the client sent it (display only), ``path`` where it was written."""

    field: str
    name: str
    path: Path
    size: int = 0


@dataclass
class Upload:
    """A parsed multipart body: file parts, plain fields, and the private folder holding the files."""

    folder: Path
    files: list[UploadedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    def remove(self) -> None:
        """Delete the folder and every file written to it."""
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class _Part:
    """The part being parsed."""

    header_name: bytes = b""
    header_value: bytes = b""
    disposition: bytes = b""
    field: str = ""
    is_file: bool = False
    data: bytes = b""


def _display_name(raw: bytes) -> str:
    name = raw.decode("utf-8", "replace").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    return name[:MAX_NAME] or "upload"


async def read_upload(content_type: str, body: AsyncIterator[bytes], *, max_bytes: int,
                      temp_root: Path | None = None) -> Upload:
    """Stream a ``multipart/form-data`` body to a new private folder.

    Args:
        content_type: the request's ``Content-Type`` header.
        body: the request body, in chunks.
        max_bytes: the most bytes the body may hold.
        temp_root: where the private folder is made (the system's temporary folder when ``None``).

    Raises:
        UploadError: 413 when the body is larger than ``max_bytes`` (reading stops there); 400 for
            a body that is not multipart, malformed, or holds too many files. The folder is removed
            before raising.
    """
    kind, options = parse_options_header(content_type or "")
    if kind != b"multipart/form-data" or b"boundary" not in options:
        raise UploadError(400, "send the files as multipart/form-data (field 'files')")
    if temp_root is not None:
        temp_root.mkdir(parents=True, exist_ok=True)
    upload = Upload(Path(tempfile.mkdtemp(prefix="upload-", dir=temp_root)))
    part = _Part()
    handle: list[IO[bytes]] = []

    def on_part_begin() -> None:
        vars(part).update(vars(_Part()))

    def on_header_field(data: bytes, start: int, end: int) -> None:
        part.header_name += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        part.header_value += data[start:end]

    def on_header_end() -> None:
        if part.header_name.lower() == b"content-disposition":
            part.disposition = part.header_value
        part.header_name, part.header_value = b"", b""

    def on_headers_finished() -> None:
        _, opts = parse_options_header(part.disposition)
        if b"name" not in opts:
            raise UploadError(400, "a multipart part without a field name")
        part.field = opts[b"name"].decode("utf-8", "replace")
        if b"filename" in opts:
            if len(upload.files) >= MAX_FILES:
                raise UploadError(400, f"at most {MAX_FILES} files per request")
            path = upload.folder / f"part-{len(upload.files)}"
            upload.files.append(UploadedFile(part.field, _display_name(opts[b"filename"]), path))
            handle[:] = [path.open("wb")]
            part.is_file = True

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part.is_file:
            handle[0].write(data[start:end])
            upload.files[-1].size += end - start
        else:
            part.data += data[start:end]
            if len(part.data) > MAX_FIELD:
                raise UploadError(413, f"field {part.field!r} is longer than {MAX_FIELD} bytes")

    def on_part_end() -> None:
        if part.is_file:
            handle.pop().close()
        else:
            upload.fields[part.field] = part.data.decode("utf-8", "replace")

    parser = MultipartParser(options[b"boundary"], {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_part_end": on_part_end,
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished})
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if received > max_bytes:
                raise UploadError(413, f"upload larger than the limit of {max_bytes / 2**20:.3g} MB "
                                       "(--max-upload-mb)")
            parser.write(chunk)
        parser.finalize()
    except UploadError:
        _close(handle)
        upload.remove()
        raise
    except Exception as exc:
        _close(handle)
        upload.remove()
        raise UploadError(400, f"malformed multipart body ({type(exc).__name__})") from exc
    return upload


def _close(handle: list[IO[bytes]]) -> None:
    for h in handle:
        h.close()


@dataclass(frozen=True)
class Checked:
    """A media file that decodes: what it holds (``audio`` or ``video``), its content type, the
    suffix openmer's loaders read it by, and its duration (seconds; ``None`` when unknown)."""

    kind: str
    mime: str
    suffix: str
    duration_s: float | None


#: FFmpeg demuxer name (the first name PyAV gives) -> (suffix, content type) of an audio file and of a video
_FORMATS = {
    "wav": ((".wav", "audio/wav"), None), "flac": ((".flac", "audio/flac"), None),
    "mp3": ((".mp3", "audio/mpeg"), None), "ogg": ((".ogg", "audio/ogg"), (".ogv", "video/ogg")),
    "mov": ((".m4a", "audio/mp4"), (".mp4", "video/mp4")), "aac": ((".aac", "audio/aac"), None),
    "matroska": ((".webm", "audio/webm"), (".mkv", "video/webm")), "aiff": ((".aiff", "audio/aiff"), None),
    "avi": (None, (".avi", "video/x-msvideo")), "mpegts": (None, (".ts", "video/mp2t")),
    "amr": ((".amr", "audio/amr"), None), "flv": (None, (".flv", "video/x-flv")),
    "mpeg": (None, (".mpg", "video/mpeg")), "asf": ((".wma", "audio/x-ms-wma"), (".wmv", "video/x-ms-wmv")),
}


def check_media(path: Path, name: str, *, max_duration_s: float) -> Checked:
    """Decode the start of an uploaded file: its type is what FFmpeg (PyAV) reads, never its name.

    The container must be one openmer's loaders read (:data:`_FORMATS`), hold an audio or video
    stream, and its first audio (else video) frame must decode.

    Raises:
        UploadError: 422 when the file is not such audio or video (empty, corrupt, another type) or
            is longer than ``max_duration_s`` (each message names ``name``, never a path here).
    """
    import av

    bad = f"{name}: not an audio or video file that can be decoded"
    if path.stat().st_size == 0:
        raise UploadError(422, f"{name}: empty file (0 bytes)")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            demuxer = container.format.name.split(",")[0]
            has_video = any(s.type == "video" and not (s.disposition & av.stream.Disposition.attached_pic)
                            for s in container.streams.video)
            stream = container.streams.audio[0] if container.streams.audio else (
                container.streams.video[0] if has_video else None)
            if stream is None:
                raise UploadError(422, f"{name}: holds no audio or video stream")
            duration = container.duration / av.time_base if container.duration is not None else None
            if demuxer not in _FORMATS:
                raise UploadError(422, f"{bad} (its format is {demuxer!r})")
            if next(iter(container.decode(stream)), None) is None:
                raise UploadError(422, f"{bad} (no frame decodes)")
    except UploadError:
        raise
    except (OSError, ValueError, av.error.FFmpegError) as exc:
        raise UploadError(422, f"{bad} ({type(exc).__name__})") from exc
    kind = "video" if has_video else "audio"
    audio, video = _FORMATS[demuxer]
    chosen = video if kind == "video" else audio
    if chosen is None:
        raise UploadError(422, f"{bad} ({kind} in a {demuxer!r} container is not read)")
    if duration is not None and duration > max_duration_s:
        raise UploadError(422, f"{name}: {duration:.1f} s is longer than the limit of {max_duration_s:g} s "
                               "(--max-duration-s)")
    return Checked(kind, chosen[1], chosen[0], duration)


def checked_path(upload: UploadedFile, checked: Checked) -> Path:
    """Give the file the suffix of its decoded format (openmer's loaders read by suffix); the new path."""
    target = upload.path.with_suffix(checked.suffix)
    upload.path.rename(target)
    upload.path = target
    return target
