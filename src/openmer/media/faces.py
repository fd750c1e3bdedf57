"""Face detection and square face crops with OpenCV's Haar cascade (for FER-style encoders).

Detector: ``haarcascade_frontalface_default.xml`` from ``cv2.data.haarcascades`` run as
``detectMultiScale(gray, 1.1, 5)`` (scale factor 1.1, 5 neighbours) on the grayscale frame; the
classifier is loaded once per process. Needs ``opencv-python-headless`` 4.x (5.0 dropped the
cascades).

Crop rule: the largest detected face ``(x, y, w, h)``; a square of side ``max(w, h) + 2 * margin``
centred on it, shrunk to fit the image if needed and then shifted inside the frame (no padding);
resized to ``size x size`` with ``cv2.INTER_AREA``; converted to grayscale by default (FER2013-style
input). Without a face: the centred square of side ``min(H, W)`` and a :class:`NoFaceWarning`
naming the file. See ``docs/media.md``.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from openmer.errors import MediaError

if TYPE_CHECKING:
    import cv2

#: The cascade file (in ``cv2.data.haarcascades``) and its detectMultiScale settings.
CASCADE_FILE = "haarcascade_frontalface_default.xml"
SCALE_FACTOR = 1.1
MIN_NEIGHBORS = 5

Box = tuple[int, int, int, int]  # x, y, w, h in pixels


class NoFaceWarning(UserWarning):
    """No face was found, so a centre crop was used instead (the message names the file)."""


@lru_cache(maxsize=1)
def _classifier() -> cv2.CascadeClassifier:
    import cv2
    import cv2.data

    path = Path(cv2.data.haarcascades) / CASCADE_FILE
    clf = cv2.CascadeClassifier(str(path))
    if clf.empty():
        raise MediaError(path, "could not load the OpenCV Haar cascade (is opencv-python-headless < 5 installed?)")
    return clf


def _check_frame(frame: np.ndarray, path: str | Path | None) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or 0 in frame.shape:
        raise MediaError(path, f"expected an RGB frame of shape (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
    return frame


def _where(path: str | Path | None) -> str:
    return str(path) if path is not None else "<array>"


def detect_faces(frame_rgb: np.ndarray) -> list[Box]:
    """Frontal faces in an RGB frame.

    Args:
        frame_rgb: (H, W, 3) uint8 RGB.

    Returns:
        ``[(x, y, w, h), ...]`` in pixels, as OpenCV returns them (empty when none).

    Raises:
        MediaError: if ``frame_rgb`` is not an (H, W, 3) uint8 array.
    """
    import cv2

    frame = _check_frame(frame_rgb, None)
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    found = _classifier().detectMultiScale(gray, SCALE_FACTOR, MIN_NEIGHBORS)
    return [(int(x), int(y), int(w), int(h)) for x, y, w, h in found]


def _largest(boxes: list[Box]) -> Box | None:
    return max(boxes, key=lambda b: b[2] * b[3]) if boxes else None


def square_box(box: Box, image_hw: tuple[int, int], margin: float = 0.1) -> Box:
    """The square crop around a face box, inside an image of size ``image_hw``.

    Args:
        box: ``(x, y, w, h)`` of the face.
        image_hw: ``(H, W)`` of the image.
        margin: added on every side: a float is a fraction of ``max(w, h)``, an int is pixels.

    Returns:
        ``(x, y, side, side)`` with ``side = min(max(w, h) + 2 * margin, H, W)``, centred on the
        face and shifted to lie inside the image.
    """
    x, y, w, h = box
    height, width = image_hw
    pad = margin * max(w, h) if isinstance(margin, float) else int(margin)
    side = int(round(min(max(w, h) + 2 * pad, height, width)))
    cx, cy = x + w / 2, y + h / 2
    x0 = int(round(min(max(cx - side / 2, 0), width - side)))
    y0 = int(round(min(max(cy - side / 2, 0), height - side)))
    return x0, y0, side, side


def _centre_box(image_hw: tuple[int, int]) -> Box:
    height, width = image_hw
    side = min(height, width)
    return (width - side) // 2, (height - side) // 2, side, side


def _crop(frame: np.ndarray, box: Box, size: int, grayscale: bool) -> np.ndarray:
    import cv2

    x, y, w, h = box
    patch = frame[y:y + h, x:x + w]
    patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY) if grayscale else np.ascontiguousarray(patch)


def crop_face(frame_rgb: np.ndarray, *, size: int = 64, margin: float = 0.1, grayscale: bool = True,
              path: str | Path | None = None) -> tuple[np.ndarray, bool]:
    """Square crop of the largest face in a frame, or of its centre when no face is found.

    Args:
        frame_rgb: (H, W, 3) uint8 RGB.
        size: side of the output in pixels.
        margin: added around the face on every side: float = fraction of the face side, int = pixels.
        grayscale: return (size, size) gray instead of (size, size, 3) RGB.
        path: the file the frame comes from, for the warning and error messages.

    Returns:
        ``(crop, found)``: uint8 (size, size) or (size, size, 3); ``found`` is False for a centre crop.

    Warns:
        NoFaceWarning: naming ``path`` when no face is found.

    Raises:
        MediaError: naming ``path`` if the frame is not (H, W, 3) uint8.
    """
    frame = _check_frame(frame_rgb, path)
    face = _largest(detect_faces(frame))
    hw = frame.shape[:2]
    if face is None:
        warnings.warn(NoFaceWarning(f"{_where(path)}: no face found; using the centre crop"), stacklevel=2)
        return _crop(frame, _centre_box(hw), size, grayscale), False
    return _crop(frame, square_box(face, hw, margin), size, grayscale), True


def face_crops(frames: np.ndarray, *, size: int = 64, margin: float = 0.1, grayscale: bool = True,
               path: str | Path | None = None) -> np.ndarray:
    """Face crops of every frame of a video.

    Faces are detected in each frame. A frame without a detection uses the face box of the
    closest earlier frame that has one, else of the closest later one; only when no frame has a
    face are all frames centre-cropped, with a single :class:`NoFaceWarning`.

    Args:
        frames: (N, H, W, 3) uint8 RGB.
        size, margin, grayscale, path: as in :func:`crop_face`.

    Returns:
        (N, size, size) uint8 (or (N, size, size, 3) with ``grayscale=False``).

    Raises:
        MediaError: naming ``path`` if ``frames`` is not (N, H, W, 3) uint8 with N >= 1.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or len(frames) == 0:
        raise MediaError(path, f"expected frames of shape (N, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    for f in frames[:1]:
        _check_frame(f, path)
    hw = frames.shape[1:3]
    found = [_largest(detect_faces(f)) for f in frames]
    if all(b is None for b in found):
        warnings.warn(NoFaceWarning(f"{_where(path)}: no face found in any of {len(frames)} frames; "
                                    f"using centre crops"), stacklevel=2)
        return np.stack([_crop(f, _centre_box(hw), size, grayscale) for f in frames])
    boxes: list[Box | None] = list(found)
    last: Box | None = None
    for i, b in enumerate(boxes):  # forward fill
        last = b if b is not None else last
        boxes[i] = last
    nxt: Box | None = None
    for i in range(len(boxes) - 1, -1, -1):  # backward fill the leading gap
        nxt = found[i] if found[i] is not None else nxt
        if boxes[i] is None:
            boxes[i] = nxt
    return np.stack([_crop(f, square_box(b, hw, margin), size, grayscale)  # type: ignore[arg-type]
                     for f, b in zip(frames, boxes, strict=True)])
