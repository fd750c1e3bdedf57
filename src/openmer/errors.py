"""Exceptions raised by openmer.

The library raises these; the CLI turns them into one readable line and a non-zero exit code.
"""

from __future__ import annotations

from pathlib import Path


class OpenmerError(Exception):
    """Base class of every error openmer raises on purpose."""


class ConfigError(OpenmerError, ValueError):
    """An invalid option, name or combination of settings."""


class DataError(OpenmerError, ValueError):
    """A dataset, manifest or label file is missing, malformed or inconsistent.

    Args:
        path: the file or folder concerned (may be ``None`` when no file is involved).
        reason: what is wrong, in words.
    """

    def __init__(self, path: str | Path | None, reason: str):
        self.path = None if path is None else Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path is not None else reason)


class MediaError(DataError):
    """A media file cannot be decoded or is unusable (corrupt, empty, silent, no stream...)."""


class SilentAudioError(MediaError):
    """The audio (of a file, a segment or a window) is digital silence: its RMS is below the
    loader's ``min_rms`` (:func:`openmer.media.load_audio`)."""


class SharedDataMissing(DataError):
    """Pretrained weights or real data expected under ``../shared`` (or ``$SHARED_DIR``) are absent."""


class EncoderNotFound(SharedDataMissing):
    """An encoder's weights are in no model mirror folder and the Hugging Face hub cannot give them
    (offline and not cached, unknown id); the message names the hub id, the folders tried and
    ``OPENMER_MODELS_DIR``."""


class UnsafeWeightsError(OpenmerError, ValueError):
    """Encoder weights in a format that can run code when read (a pickled ``pytorch_model.bin``):
    openmer loads encoder weights only from safetensors (the FER Keras file is read with h5py)."""


class MissingModalityError(OpenmerError, ValueError):
    """A modality a model needs is absent from the input and the model cannot do without it."""


class NotSupportedError(ConfigError):
    """A method was asked for an optional capability it does not have (e.g. a classifier
    :meth:`~openmer.methods.base.OpenSetMethod.head` for post-hoc scores); the message names the
    method and the capability."""


class NotFittedError(OpenmerError, RuntimeError):
    """A method was asked to score before it was fitted or loaded."""


class TrainingError(OpenmerError, RuntimeError):
    """Training cannot go on (e.g. a NaN/inf loss); the message names the epoch and step."""


class CheckpointError(OpenmerError, ValueError):
    """A run directory / checkpoint is missing, incomplete or does not match the requested encoders."""


class OutputError(OpenmerError, OSError):
    """A file or folder openmer has to write cannot be written (read-only, disk full, not a folder...).

    Args:
        path: the file or folder that could not be written.
        reason: what the operating system said, in words.
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class OpenmerWarning(UserWarning):
    """Something the user should know that does not stop the work (the CLI prints ``warning: ...``)."""
