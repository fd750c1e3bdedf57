"""The loaded run: a run folder's method, threshold and encoders, ready to apply to new input.

:func:`load_run` reads a run folder through :mod:`openmer.runs` (every file and number checked,
encoders resolved from the run's profile, never from a path in the folder) and returns one
:class:`LoadedRun`, which ``openmer evaluate``, ``openmer predict`` and whatever applies a run next
(timelines, unknown-discovery, a service beside the CLI) use: ``run.clips(...)`` builds the clips
its encoders read, ``run.score(clips)`` scores them through the one input pipeline of the method's
``consumes`` (:mod:`openmer.methods.inputs`), ``run.label(confidence, prediction)`` applies the
deployable threshold (HCEP Algorithm 1, Sec. 4.4.6).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from openmer.data.clips import ClipDataset, vision_preprocess
from openmer.data.manifest import Manifest
from openmer.methods.base import OpenSetMethod, OpenSetScores
from openmer.methods.inputs import MethodInputs, method_inputs
from openmer.methods.threshold import Threshold, decide
from openmer.runs import RunInfo, load_method

if TYPE_CHECKING:
    from openmer.backbones.specs import ProfileConfig

__all__ = ["LoadedRun", "load_run"]


@dataclass
class LoadedRun:
    """A run folder with its method and encoders loaded.

    Attributes:
        run_dir: the folder.
        info: its :class:`~openmer.runs.RunInfo` (``run.json``).
        method: the fitted method, in eval mode.
        encoders: modality -> frozen encoder of the method's input (the profile's for a method on
            features, the method's own for one on clips).
        profile, allow_paths: where the run's other encoders load from (:meth:`encoder`).
    """

    run_dir: Path
    info: RunInfo
    method: OpenSetMethod
    encoders: dict[str, Any]
    #: the trusted profile of the run's encoders (:func:`openmer.runs.trusted_profile`), ``None``
    #: when the caller gave the encoders
    profile: ProfileConfig | None = None
    #: whether ``profile`` may name local folders (a profile given or registered, never the run folder's)
    allow_paths: bool = False

    @property
    def modalities(self) -> list[str]:
        """The modalities the run was trained on, in block order."""
        return list(self.info.modalities)

    @property
    def known_classes(self) -> list[str]:
        """The known classes, in class-index order."""
        return list(self.method.known_classes)

    @property
    def threshold(self) -> float:
        """The deployable threshold on ``confidence`` (``run.json``)."""
        return float(self.info.threshold.value)

    @property
    def deployed_threshold(self) -> Threshold:
        """The deployable threshold with how it was chosen (:class:`~openmer.methods.threshold.Threshold`)."""
        return self.info.threshold

    def clips(self, manifest: Manifest, labels: Sequence[int] | np.ndarray) -> ClipDataset:
        """``manifest``'s clips for this run: its modalities, decoded as its encoders read them.

        Args:
            labels: (N,) known-class index per row, -1 = unknown.
        """
        return ClipDataset(manifest, [int(v) for v in labels], self.modalities,
                           vision_preprocess=vision_preprocess(self.encoders))

    def inputs(self, clips: ClipDataset, *, cache_dir: str | Path | None = None) -> MethodInputs:
        """What the run's method reads for ``clips`` (:func:`~openmer.methods.inputs.method_inputs`
        for its ``consumes``); ``cache_dir``: the feature cache (``None`` = no cache)."""
        return method_inputs(self.method.consumes, clips, self.encoders, cache_dir=cache_dir)

    def batches(self, clips: ClipDataset, *, batch_size: int | None = None,
                cache_dir: str | Path | None = None) -> list[dict[str, Any]]:
        """The batches the run's method reads for ``clips`` (``batch_size`` ``None``: the pipeline's)."""
        return self.inputs(clips, cache_dir=cache_dir).batches(self.method, batch_size)

    def score(self, clips: ClipDataset, *, batch_size: int | None = None,
              cache_dir: str | Path | None = None) -> OpenSetScores:
        """Scores of every clip (on CPU): ``confidence`` (N,), ``prediction`` (N,) known-class
        index, ``probabilities`` (N, K) or ``None``.

        A method on features fills a clip's absent block with its training mean, with a warning;
        HCEP leaves the block out (``docs/interpretation.md``).
        """
        return self.method.score_all(self.batches(clips, batch_size=batch_size, cache_dir=cache_dir))

    def encoder(self, modality: str) -> Any:
        """The run's frozen encoder of ``modality``: the one its input goes through, else loaded from
        the run's trusted profile (never from a path in the run folder), e.g. the text encoder
        that names unknown clusters.

        Raises:
            NotSupportedError: the run's profile has no encoder of ``modality``.
        """
        from openmer.backbones.factory import load_profile
        from openmer.errors import NotSupportedError

        if modality in self.encoders:
            return self.encoders[modality]
        if self.profile is None or modality not in self.profile.specs():
            name = self.info.profile.get("name")
            raise NotSupportedError(f"the run's profile {name!r} has no {modality} encoder")
        enc = load_profile(self.profile, modalities=(modality,), allow_paths=self.allow_paths)[modality]
        self.encoders[modality] = enc
        return enc

    def release_caches(self) -> None:
        """Empty the per-input caches of the run's encoders (``prefix_cache``: the hidden states
        that late prompt entry keeps per clip). Windows of a long recording are each seen once, so
        keeping their states only grows memory with the recording's length (about 0.4 MB per 4 s
        window of Whisper-base); the window paths call this after each group of windows."""
        found = [*self.encoders.values()]
        if isinstance(self.method, torch.nn.Module):
            found += list(self.method.modules())
        for module in found:
            cache = getattr(module, "prefix_cache", None)
            if cache is not None:
                cache.clear()

    def label(self, confidence: float, prediction: int) -> str:
        """The known class ``prediction`` names when ``confidence >= threshold``, else ``"unknown"``."""
        return decide(confidence, prediction, self.threshold, self.known_classes)


def load_run(run_dir: str | Path, *, device: str | torch.device = "cpu", profile: ProfileConfig | None = None,
             encoders: Mapping[str, torch.nn.Module] | None = None) -> LoadedRun:
    """Load a run folder written by :func:`openmer.training.run.train` (:func:`openmer.runs.load_method`).

    Args:
        run_dir: the run folder.
        device: where the method and encoders go.
        profile: the profile the run was trained with, when it is not a registered profile
            (``--profile FILE.json``); its encoder ids must equal the run's.
        encoders: frozen encoders already loaded by the caller, used instead of the profile's.

    Raises:
        CheckpointError: not a finished run folder; a file that is missing, empty, truncated,
            corrupt, not strict JSON or holding a non-finite number; weights whose header disagrees
            with ``run.json`` or that hold NaN; encoders that are not its profile's (each message
            names the file).
    """
    run_dir = Path(run_dir)
    got = load_method(run_dir, device=device, profile=profile, encoders=encoders)
    return LoadedRun(run_dir, got.info, got.method, dict(got.encoders), got.profile, got.allow_paths)
