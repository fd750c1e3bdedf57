"""Post-hoc scores for any trained classifier head (the pytorch-ood / OpenOOD detector set).

A method with a classifier head exposes :meth:`head` -> :class:`HeadOutputs`: its class
logits (B, K), whose argmax is its prediction, and the penultimate features (B, E) those logits
are computed from. A post-hoc score turns them into a ``confidence`` (higher = more likely
known) without retraining. Scores that need statistics of the known training data
(Mahalanobis, KNN, ViM) are fitted on the head's outputs for the training samples, after
training (:meth:`PostHocScore.fit`); their statistics are buffers, saved with the method.

pytorch-ood returns *outlier* scores (its ``MaxSoftmax`` is ``-max softmax``); every function
here returns the *confidence*, the negation of pytorch-ood's value (same as OpenOOD's ``conf``).

Registry: ``POSTHOC_SCORES`` maps a name to a :class:`PostHocScore` class, filled by
``@register_score("name")``; :func:`get_score` raises a ``ConfigError`` listing the choices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Self

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from openmer.errors import ConfigError, NotFittedError, NotSupportedError
from openmer.registry import Registry

if TYPE_CHECKING:  # methods.base imports HeadOutputs from here
    from openmer.methods.base import OpenSetMethod

__all__ = [
    "POSTHOC_SCORES", "HeadOutputs", "PostHocScore", "energy_confidence", "entropy_confidence", "fitted_score",
    "get_score", "head_outputs", "knn_confidence", "mahalanobis_confidence", "max_logit", "max_softmax",
    "posthoc_scores", "register_score", "vim_confidence",
]


class HeadOutputs(NamedTuple):
    """What a classifier head gives a post-hoc score.

    Attributes:
        logits: (B, K) class scores; ``argmax`` is the method's known-class prediction.
        features: (B, E) the penultimate features the logits are computed from.
    """

    logits: Tensor
    features: Tensor


# ----------------------------------------------------------------------------- pure functions


def max_softmax(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """``max_k softmax(l / T)_k`` (Hendrycks & Gimpel, ICLR 2017; pytorch-ood ``MaxSoftmax`` negated).

    Args:
        logits: (B, K).
        temperature: T > 0.

    Returns:
        (B,) in [1/K, 1].
    """
    return torch.softmax(logits / temperature, dim=1).max(dim=1).values


def max_logit(logits: Tensor) -> Tensor:
    """``max_k l_k`` (Hendrycks et al., "Scaling OOD detection", ICML 2022; pytorch-ood ``MaxLogit`` negated).

    Args:
        logits: (B, K).

    Returns:
        (B,).
    """
    return logits.max(dim=1).values


def energy_confidence(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Negative free energy ``T log sum_k exp(l_k / T)`` (Liu et al., "Energy-based OOD detection", NeurIPS 2020).

    pytorch-ood's ``EnergyBased.score`` returns the energy ``-T logsumexp(l / T)``; this is its negation.

    Args:
        logits: (B, K).
        temperature: T > 0.

    Returns:
        (B,).
    """
    return temperature * torch.logsumexp(logits / temperature, dim=1)


def entropy_confidence(logits: Tensor) -> Tensor:
    """Negative Shannon entropy (nats) of ``softmax(l)``: ``sum_k p_k log p_k``, in [-log K, 0].

    pytorch-ood's ``Entropy`` returns the entropy; this is its negation (a peaked posterior = known).

    Args:
        logits: (B, K).

    Returns:
        (B,).
    """
    logp = torch.log_softmax(logits, dim=1)
    return (logp.exp() * logp).sum(dim=1)


def mahalanobis_confidence(features: Tensor, means: Tensor, whitening: Tensor) -> Tensor:
    """``max_k -(f - mu_k)^T P (f - mu_k)``: the Mahalanobis confidence of Lee et al. (NeurIPS 2018), Eq. 2.

    The precision P is given by a factor ``W`` with ``P = W W^T`` and computed as
    ``-||(f - mu_k) W||^2``, a sum of squares: no cancellation between the large entries of an
    ill-conditioned P. The result has the dtype of ``features``.

    Args:
        features: (B, E).
        means: (K, E) class means of the known training features.
        whitening: (E, r) factor of the precision (the inverse of the shared class covariance),
            e.g. its Cholesky factor, or ``V diag(lambda^-1/2)`` over r eigen-directions.

    Returns:
        (B,) <= 0; 0 at a class mean.
    """
    diff = features[:, None, :] - means[None].to(features.dtype)  # (B, K, E)
    d2 = (diff @ whitening.to(features.dtype)).square().sum(dim=2)
    return -d2.min(dim=1).values


def knn_confidence(features: Tensor, bank: Tensor, k: int) -> Tensor:
    """``-||z - z_(k)||_2`` with ``z = f / ||f||``: Sun et al., "OOD detection with deep nearest neighbors", ICML 2022.

    Args:
        features: (B, E).
        bank: (N, E) L2-normalised known training features.
        k: which neighbour (1 = nearest), ``1 <= k <= N``.

    Returns:
        (B,) in [-2, 0].
    """
    z = F.normalize(features, dim=1)
    dist = torch.cdist(z, bank)  # (B, N)
    return -dist.topk(k, dim=1, largest=False).values[:, -1]


def vim_confidence(logits: Tensor, features: Tensor, origin: Tensor, null_space: Tensor, alpha: Tensor) -> Tensor:
    """ViM (Wang et al., "Virtual-logit matching", CVPR 2022): ``logsumexp(l) - alpha ||(f - u) R||``.

    Args:
        logits: (B, K).
        features: (B, E).
        origin: (E,) the origin u (``-pinv(W) b`` for a linear head).
        null_space: (E, E - d) orthonormal basis R of the residual (the directions of least variance
            of the centred training features).
        alpha: scalar, mean max training logit / mean training residual norm.

    Returns:
        (B,), pytorch-ood ``ViM.predict_features`` negated.
    """
    residual = ((features - origin) @ null_space).norm(dim=1)
    return torch.logsumexp(logits, dim=1) - alpha * residual


# ----------------------------------------------------------------------------- score objects


class PostHocScore(nn.Module):
    """A confidence computed from :class:`HeadOutputs`, fitted (when needed) on known training data.

    Statistics are buffers registered by :meth:`fit` (their shapes depend on the data), so a
    fitted score saves and loads with the method that owns it: :meth:`state_shapes` goes into the
    run's JSON and :meth:`allocate` recreates the buffers before the weights are loaded.
    """

    name: ClassVar[str]
    #: whether :meth:`fit` must see the training data before scoring
    needs_fit: ClassVar[bool] = False

    @property
    def is_fitted(self) -> bool:
        return not self.needs_fit or bool(self.state_shapes())

    def fit(self, train: HeadOutputs, labels: Tensor, linear: tuple[Tensor, Tensor] | None = None) -> Self:
        """Fit on the head's outputs for known training samples; returns ``self``.

        Args:
            train: (N, K) logits and (N, E) features of the training samples.
            labels: (N,) known-class indices (samples with labels < 0 are ignored).
            linear: the head's last layer ``(W (K, E), b (K,))`` when it is linear (ViM's origin).
        """
        return self

    def forward(self, out: HeadOutputs) -> Tensor:
        """(B,) confidence, higher = more likely known.

        Raises:
            NotFittedError: a score that needs fitting was not fitted.
        """
        if not self.is_fitted:
            raise NotFittedError(f"post-hoc score {self.name!r} must be fitted on training features first")
        return self.confidence(out)

    def confidence(self, out: HeadOutputs) -> Tensor:
        raise NotImplementedError

    def state_shapes(self) -> dict[str, list[int]]:
        """Shapes of the fitted buffers (JSON-serialisable)."""
        return {n: list(b.shape) for n, b in self.named_buffers(recurse=False)}

    def allocate(self, shapes: Mapping[str, Sequence[int]]) -> None:
        """Create zero buffers of the given shapes (before loading saved statistics)."""
        for n, shape in shapes.items():
            self.register_buffer(n, torch.zeros(tuple(shape)))

    def _set(self, **tensors: Tensor) -> None:
        for n, t in tensors.items():
            self.register_buffer(n, t.detach().float().contiguous())


#: registered post-hoc scores, name -> :class:`PostHocScore` class, in registration order
POSTHOC_SCORES: Registry[type[PostHocScore]] = Registry("post-hoc score", name_attribute="name")
#: class decorator adding a :class:`PostHocScore` under a name
register_score = POSTHOC_SCORES.register


def get_score(name: str) -> type[PostHocScore]:
    """The post-hoc score class registered as ``name``.

    Raises:
        ConfigError: unknown name; the message lists the choices.
    """
    return POSTHOC_SCORES.get(name)


@register_score("msp")
class MaxSoftmax(PostHocScore):
    """:func:`max_softmax` at temperature 1."""

    def confidence(self, out: HeadOutputs) -> Tensor:
        return max_softmax(out.logits)


@register_score("max_logit")
class MaxLogit(PostHocScore):
    """:func:`max_logit`."""

    def confidence(self, out: HeadOutputs) -> Tensor:
        return max_logit(out.logits)


@register_score("energy")
class Energy(PostHocScore):
    """:func:`energy_confidence` at temperature 1 (the paper's default)."""

    def confidence(self, out: HeadOutputs) -> Tensor:
        return energy_confidence(out.logits)


@register_score("entropy")
class Entropy(PostHocScore):
    """:func:`entropy_confidence`."""

    def confidence(self, out: HeadOutputs) -> Tensor:
        return entropy_confidence(out.logits)


def _known(train: HeadOutputs, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    keep = labels >= 0
    if not bool(keep.any()):
        raise ValueError("no known training sample to fit a post-hoc score on")
    return train.logits[keep].float(), train.features[keep].float(), labels[keep]


@register_score("mahalanobis")
class Mahalanobis(PostHocScore):
    """:func:`mahalanobis_confidence` with class means and a shared covariance of the training features.

    The covariance is the maximum-likelihood one, ``sum_k sum_{i in k} (f_i - mu_k)(f_i - mu_k)^T / N``
    (Lee et al. 2018; OpenOOD fits sklearn's ``EmpiricalCovariance``). It is fitted in float64 and
    inverted through its eigen-decomposition ``V diag(lambda) V^T``: the saved ``whitening`` is
    ``V diag(lambda^-1/2)`` over the directions with ``lambda > E eps_64 lambda_max`` (the
    pseudo-inverse's cut-off in float64, about 1e-13 of the largest for E = 512), so fewer samples
    than dimensions still work and directions of small but real variance are kept. (A float32
    pseudo-inverse cut at ``E eps_32``, 1.5e-5 of the largest for E = 128, and unknowns lying out
    along the dropped directions scored as known: docs/reliability.md.)

    pytorch-ood's ``Mahalanobis`` does not divide the covariance by N and halves the distance:
    its outlier score is ``1 / (2N)`` times minus this confidence (and it adds ``1e-6 I`` to its
    covariance), which leaves every metric unchanged. A class absent from the training data gets
    no mean and never wins the ``max``. A run folder saved before the float64 fit holds a
    ``precision`` buffer instead; it is factored when scoring.
    """

    needs_fit = True
    means: Tensor
    whitening: Tensor  # absent in a run folder saved before the float64 fit, which has:
    precision: Tensor

    def fit(self, train: HeadOutputs, labels: Tensor, linear: tuple[Tensor, Tensor] | None = None) -> Self:
        _, f, y = _known(train, labels)
        f = f.double()
        k = int(y.max()) + 1
        present = torch.bincount(y, minlength=k) > 0
        means = torch.stack([f[y == c].mean(dim=0) for c in range(k) if present[c]])
        row = torch.cumsum(present.long(), 0) - 1  # class index -> row of `means`
        centred = f - means[row[y]]
        variances, directions = torch.linalg.eigh(centred.t() @ centred / len(f))
        kept = variances > variances.max().clamp_min(0) * f.shape[1] * torch.finfo(torch.float64).eps
        self._set(means=means, whitening=directions[:, kept] / variances[kept].sqrt())
        return self

    def confidence(self, out: HeadOutputs) -> Tensor:
        whitening = getattr(self, "whitening", None)
        if whitening is None:  # an older run folder: the float32 precision matrix
            values, vectors = torch.linalg.eigh(self.precision.double())
            whitening = vectors * values.clamp_min(0).sqrt()
        return mahalanobis_confidence(out.features.double(), self.means, whitening).float()


@register_score("knn")
class KNN(PostHocScore):
    """:func:`knn_confidence` against the normalised known training features.

    k follows the number N of known training samples as in Sun et al. 2022 (k = 50 for the 50,000
    CIFAR-10 images, and k alpha when a fraction alpha of the data is kept), and never exceeds the
    training count of the smallest known class (beyond it, every sample of that class has its k-th
    neighbour in another class): ``k = max(1, min(round(N / 1000), n_min))``. The rule reads the known training
    data only. Measured on the EmoDB and MELD heads (docs/methods.md), it scores as well as or
    better than pytorch-ood's and OpenOOD's fixed k = 50 (N here is a few hundred to a few thousand).
    """

    needs_fit = True
    bank: Tensor
    k: Tensor

    def fit(self, train: HeadOutputs, labels: Tensor, linear: tuple[Tensor, Tensor] | None = None) -> Self:
        _, f, y = _known(train, labels)
        counts = torch.bincount(y)
        smallest = int(counts[counts > 0].min())
        k = max(1, min(round(len(f) / 1000), smallest))
        self._set(bank=F.normalize(f, dim=1), k=torch.tensor(float(k)))
        return self

    def confidence(self, out: HeadOutputs) -> Tensor:
        return knn_confidence(out.features.float(), self.bank, int(self.k))


@register_score("vim")
class ViM(PostHocScore):
    """:func:`vim_confidence`, fitted as pytorch-ood's ``ViM.fit_features``.

    The principal subspace has ``d = E // 2`` dimensions (the ViM paper keeps about half of the
    features' width: 1000 of 2048, 512 of 768). Origin: ``u = -pinv(W) b`` for a linear last
    layer; a head whose logits are not a linear function of the features (reciprocal points,
    prototypes, autoencoders) uses the mean training feature instead. ``alpha`` is
    ``|mean max logit| / mean residual norm``: pytorch-ood's value whenever the mean max logit is
    positive (a linear head on ReLU features); a head whose logits are negative distances (LPL)
    would otherwise get ``alpha < 0`` and reward large residuals (docs/methods.md).
    """

    needs_fit = True
    origin: Tensor
    null_space: Tensor
    alpha: Tensor

    def fit(self, train: HeadOutputs, labels: Tensor, linear: tuple[Tensor, Tensor] | None = None) -> Self:
        logits, f, _ = _known(train, labels)
        e = f.shape[1]
        if e < 2:
            raise ConfigError(f"ViM needs features of width >= 2, got {e}")
        d = e // 2
        origin = -(torch.linalg.pinv(linear[0].float()) @ linear[1].float()) if linear is not None else f.mean(dim=0)
        x = f - origin
        _, vecs = torch.linalg.eigh(x.t() @ x / len(x))  # eigenvalues ascending
        null_space = vecs[:, : e - d]
        alpha = logits.max(dim=1).values.mean().abs() / (x @ null_space).norm(dim=1).mean().clamp_min(1e-12)
        self._set(origin=origin, null_space=null_space, alpha=alpha)
        return self

    def confidence(self, out: HeadOutputs) -> Tensor:
        return vim_confidence(out.logits.float(), out.features.float(), self.origin, self.null_space, self.alpha)


# ----------------------------------------------------------------------------- applying scores


@torch.no_grad()
def head_outputs(method: OpenSetMethod, batches: Iterable[Mapping[str, Any]]) -> tuple[HeadOutputs, Tensor]:
    """The head outputs of ``method`` over ``batches``, concatenated, and the batches' labels.

    Raises:
        NotSupportedError: the method has no classifier head (:meth:`OpenSetMethod.has_head`).
    """
    was_training = method.training
    method.eval()
    try:
        return _head_pass(method, batches)
    finally:
        method.train(was_training)


def _head_pass(method: OpenSetMethod, batches: Iterable[Mapping[str, Any]]) -> tuple[HeadOutputs, Tensor]:
    """:func:`head_outputs` in the mode ``method`` is in."""
    if not method.has_head():
        raise NotSupportedError(f"{type(method).__name__} has no classifier head, so post-hoc scores do not apply")
    parts = [(method.head(b), torch.as_tensor(b["label"])) for b in batches]
    logits = torch.cat([p[0].logits for p in parts])
    features = torch.cat([p[0].features for p in parts])
    labels = torch.cat([p[1] for p in parts]).to(logits.device)
    return HeadOutputs(logits, features), labels


@torch.no_grad()
def posthoc_scores(method: OpenSetMethod, train: Iterable[Mapping[str, Any]], test: Iterable[Mapping[str, Any]],
                   names: Sequence[str]) -> dict[str, tuple[Tensor, Tensor]]:
    """Every post-hoc score in ``names`` on one trained head: ``name -> (confidence, prediction)`` on CPU,
    in one eval-mode pass over ``test`` (and ``train`` for the scores fitted on it); ``method`` is
    left in eval mode, where :func:`openmer.training.fit` leaves a fitted method.

    Args:
        method: a fitted method with a classifier head (:meth:`OpenSetMethod.head`; ViM also reads
            :meth:`OpenSetMethod.linear_head`).
        train: batches of known training samples (the fit data of Mahalanobis, KNN, ViM).
        test: the batches to score.
        names: registered score names.

    Raises:
        ConfigError: an unknown name; NotSupportedError (a ConfigError): a method without a head.
    """
    classes = [get_score(n) for n in names]
    method.eval()  # a fitted method is scored in eval mode, and stays there (as training.fit leaves it)
    test_out, _ = _head_pass(method, test)
    prediction = test_out.logits.argmax(dim=1).cpu()
    fit_data = _head_pass(method, train) if any(c.needs_fit for c in classes) else None
    return {name: (fitted_score(method, name, fit_data).to(test_out.logits.device)(test_out).cpu(), prediction)
            for name in names}


def fitted_score(method: OpenSetMethod, name: str, fit_data: tuple[HeadOutputs, Tensor] | None) -> PostHocScore:
    """Post-hoc score ``name``, fitted on ``fit_data`` (the method's :func:`head_outputs` on its
    known training samples) when it needs a fit; ``fit_data`` may be ``None`` for one that does not.

    Raises:
        ConfigError: an unknown name, or a score that needs a fit without ``fit_data``.
    """
    cls = get_score(name)
    score = cls()
    if cls.needs_fit:
        if fit_data is None:
            raise ConfigError(f"post-hoc score {name!r} is fitted on the known training samples; none were given")
        linear = method.linear_head()
        score = score.to(fit_data[0].logits.device)
        score.fit(*fit_data, linear=linear)
    return score
