"""openmer.media.faces on a real photograph (skimage's astronaut) and on blank frames."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from openmer.errors import MediaError
from openmer.media import NoFaceWarning, crop_face, detect_faces, face_crops, square_box

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image provides the public-domain test photo")

ASTRONAUT_FACE = (177, 66, 95, 95)  # where the Haar cascade finds it (shared/README.md)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage_data.astronaut()  # (512, 512, 3) uint8 RGB


@pytest.fixture
def blank() -> np.ndarray:
    return np.full((120, 160, 3), 128, np.uint8)


@pytest.fixture(scope="module")
def astronaut_boxes(astronaut) -> list:
    return detect_faces(astronaut)


def test_detect_faces_on_astronaut(astronaut_boxes):
    boxes = astronaut_boxes
    assert len(boxes) == 1
    assert all(isinstance(v, int) for v in boxes[0])
    np.testing.assert_allclose(boxes[0], ASTRONAUT_FACE, atol=4)


def test_detect_faces_on_blank(blank):
    assert detect_faces(blank) == []


def test_square_box_rule():
    assert square_box((100, 50, 40, 30), (480, 640), 0.1) == (96, 41, 48, 48)
    assert square_box((100, 50, 40, 30), (480, 640), 10) == (90, 35, 60, 60)
    assert square_box((0, 0, 40, 40), (480, 640), 10) == (0, 0, 60, 60)  # shifted inside
    assert square_box((600, 440, 40, 40), (480, 640), 10) == (580, 420, 60, 60)
    assert square_box((10, 10, 100, 100), (80, 640), 0.5) == (20, 0, 80, 80)  # shrunk to fit, centred


def test_crop_face_astronaut(astronaut, astronaut_boxes):
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoFaceWarning)
        crop, found = crop_face(astronaut, path="astronaut.png")
    assert found and crop.shape == (64, 64) and crop.dtype == np.uint8
    # the crop is the face region: it matches a direct crop of the expected square
    import cv2

    x, y, w, h = square_box(astronaut_boxes[0], astronaut.shape[:2], 0.1)
    expected = cv2.cvtColor(cv2.resize(astronaut[y:y + h, x:x + w], (64, 64), interpolation=cv2.INTER_AREA),
                            cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(crop, expected)


def test_crop_face_rgb_pixel_margin(astronaut):
    small = astronaut[::2, ::2].copy()  # 256x256: faster detection
    rgb, found = crop_face(small, size=48, grayscale=False, margin=4)
    assert found and rgb.shape == (48, 48, 3) and rgb.dtype == np.uint8


def test_crop_face_blank_warns_with_file_name(blank):
    with pytest.warns(NoFaceWarning, match=re.escape("blank.png: no face found; using the centre crop")):
        crop, found = crop_face(blank, path="blank.png")
    assert not found and crop.shape == (64, 64)
    with pytest.warns(NoFaceWarning, match=re.escape("<array>: no face found")):
        crop_face(blank)


def test_face_crops_fills_from_neighbouring_frames(astronaut):
    blank = np.zeros_like(astronaut)
    frames = np.stack([blank, astronaut, blank])
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoFaceWarning)
        crops = face_crops(frames, path="clip.mp4")
    assert crops.shape == (3, 64, 64) and crops.dtype == np.uint8
    # frames 0 and 2 reuse frame 1's box: on a black frame the crop is black
    assert not crops[0].any() and not crops[2].any() and crops[1].any()


def test_face_crops_without_any_face_warns_once(blank):
    frames = np.stack([blank] * 4)
    with pytest.warns(NoFaceWarning, match=re.escape("clip.mp4: no face found in any of 4 frames")) as record:
        crops = face_crops(frames, size=32, path="clip.mp4")
    assert len([w for w in record if issubclass(w.category, NoFaceWarning)]) == 1
    assert crops.shape == (4, 32, 32)


@pytest.mark.parametrize("bad", [np.zeros((64, 64), np.uint8), np.zeros((64, 64, 3), np.float32),
                                 np.zeros((64, 64, 4), np.uint8)])
def test_bad_frame(bad):
    with pytest.raises(MediaError, match=r"face.png: expected an RGB frame of shape \(H, W, 3\) uint8"):
        crop_face(bad, path="face.png")
    with pytest.raises(MediaError, match=r"expected an RGB frame"):
        detect_faces(bad)


def test_bad_frames_array():
    with pytest.raises(MediaError, match=r"clip.mp4: expected frames of shape \(N, H, W, 3\) uint8"):
        face_crops(np.zeros((64, 64, 3), np.uint8), path="clip.mp4")
    with pytest.raises(MediaError, match=r"clip.mp4: expected an RGB frame"):
        face_crops(np.zeros((2, 64, 64, 3), np.float32), path="clip.mp4")
