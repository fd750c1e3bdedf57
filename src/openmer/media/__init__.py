"""Media decoding: audio (soundfile / PyAV, resampled to 16 kHz), video frames (PyAV, uniform
sampling), face crops (OpenCV Haar cascade) and transcripts. See ``docs/media.md``.

Every failure raises :class:`openmer.errors.MediaError` naming the file and the problem.
"""

from openmer.media.audio import SAMPLE_RATE, check_sample_rate, load_audio, resample, to_16k
from openmer.media.faces import NoFaceWarning, crop_face, detect_faces, face_crops, square_box
from openmer.media.synth import write_composite_clip
from openmer.media.text import load_text
from openmer.media.video import Clip, MediaInfo, load_clip, load_frames, probe, sample_indices

__all__ = [
    "SAMPLE_RATE",
    "Clip",
    "MediaInfo",
    "NoFaceWarning",
    "check_sample_rate",
    "crop_face",
    "detect_faces",
    "face_crops",
    "load_audio",
    "load_clip",
    "load_frames",
    "load_text",
    "probe",
    "resample",
    "sample_indices",
    "square_box",
    "to_16k",
    "write_composite_clip",
]
