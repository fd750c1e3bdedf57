"""HCEP: Hinting the unknown with Collaborative Emotion Prompts (Liu et al., Information Fusion 2026).

Frozen encoders (one per modality, from a backbone profile) adapted only by learnable prompts:

- SMEP (Sec. 3.3, Eq. 1-3): m learnable text tokens -> N_V, N_A -> prompted F_T, F_V, F_A;
- CUEP (Sec. 3.4, Eq. 4): per known class, positive and negative prompts per modality -> F_M+, F_M-;
- DPOL (Sec. 3.5, Eq. 5-9): L = L_emo + L_osr;
- inference (Algorithm 1): p = softmax(D_neg - D_pos), confidence = max p.

Readings of ambiguous points are listed in ``docs/interpretation.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self, cast

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from openmer.backbones.base import Encoder, PromptSpec, TextEncoder
from openmer.backbones.factory import ProfileConfig, load_encoder
from openmer.data.clips import modality_present
from openmer.errors import ConfigError, MissingModalityError, NotSupportedError
from openmer.methods.base import (
    Batch,
    LossOutput,
    MethodConfig,
    OpenSetMethod,
    OpenSetScores,
    frozen,
    parameter_version,
)
from openmer.methods.hcep.cuep import CUEP, class_sentences
from openmer.methods.hcep.dpol import blockwise_composite_distance, blockwise_cosine, emotion_logits, osr_logits
from openmer.methods.heads import feature_statistics
from openmer.methods.posthoc import HeadOutputs
from openmer.methods.registry import register

if TYPE_CHECKING:
    from openmer.methods.hcep.smep import SMEP

logger = logging.getLogger(__name__)

MODALITY_ORDER = ("text", "video", "audio")  # F_M = [F_T, F_V, F_A] (Eq. 3)
#: the batch key of :meth:`HCEP.encode_samples_once`: modality -> (n_present, D_m) prompted encodings
ENCODED_SAMPLES = "hcep_encoded_samples"


class HCEPConfig(MethodConfig):
    """HCEP options. Defaults follow the paper; the flags are the ablations of Tables 5-7.

    Attributes:
        profile: the frozen encoders (recorded so a checkpoint can rebuild them).
        modalities: the blocks of F_M, a subset of ("text", "video", "audio") in that order.
            A dataset without a modality (EmoDB: no video; MELD: text only) leaves its block out.
        n_prompt_tokens: m, SMEP's learnable text tokens (paper: 2).
        prompt_init: phrase whose token embeddings initialise the tokens (paper: "facial expression").
        positive_template / negative_template: CUEP texts, ``{}`` = class name.
        use_smep / use_cuep / use_loss_emo / use_loss_osr: ablation switches (Table 5). Without
            CUEP the positive/negative class features are learnable vectors initialised at random:
            this one switch is also Table 6's class-feature choice ("prompted" = ``use_cuep=True``,
            "random" = ``use_cuep=False``).
        dpol_streams: ``"negative_and_positive"`` (paper: logits D_neg - D_pos) or
            ``"negative_only"`` (Table 6: logits D_neg alone; no positive class prompts).
        text_prompts: ``"learnable"`` (paper: SMEP's m learnable tokens), ``"fixed"`` (Table 6: the
            tokens are the fixed embeddings of ``prompt_init``, never trained; N_V/N_A still learn)
            or ``"learnable_with_labels"`` (Table 6, CoOp-style: the CUEP class sentences are also
            prompted with the learnable tokens, so F_T+ / F_T- are recomputed every step).
        dpol_features: which features the two DPOL streams use (Table 7): ``"hybrid"`` (paper:
            L_emo compares the multimodal query with F_T+, L_osr uses F_M), ``"text_only"`` (both
            streams use only the text block F_T; the other modalities are not used) or
            ``"multimodal_only"`` (L_emo compares F_M with F_M+ instead of F_T+).
        cuep_text: CUEP's text class features F_T+ / F_T- (Table 6 bottom): ``"fixed"`` (paper:
            the sentences "This video is {k}" / "This video is not {k}"), ``"learnable_tokens"``
            (per class and stream, n learnable tokens at the text encoder's prompt entry and no
            class name; n = the negative template's token count; N(0, 0.02^2) start) or
            ``"learnable_tokens_with_labels"`` (CoOp's ``[V]_1..[V]_n [CLASS]``: one learnable
            context per stream, shared by the classes, started at the templates' words). The
            learnable ones are the only learnable class features of a text-only corpus (MELD).
        confidence: the open-set score of a clip from the DPOL logits z = s (D_neg - D_pos):
            ``"max_probability"`` (Algorithm 1: max softmax(z)), ``"max_logit"`` (max z) or
            ``"energy"`` (logsumexp z, the energy score of Liu et al. 2020 with T = 1). The
            prediction (argmax z) is the same for all three.
        anchor: whose SMEP prompts are learnable and projected into the others (Fig. 4):
            ``"text"`` (paper), ``"video"``, ``"audio"``, or ``"none"`` (independent learnable
            prompts per modality, no projection).
        emo_match: how cos(F_M, F_T+) matches dimensions (Eq. 5): ``"projection"`` (a learnable
            linear map per block, summed, to the text dimension) or ``"text_block"`` (F_T alone).
            Used with ``dpol_features="hybrid"`` only.
        logit_scale: inverse temperature of the cosine logits of L_emo.
        osr_logit_scale: s, inverse temperature of the DPOL logits: p = softmax(s (D_neg - D_pos))
            in L_osr and at inference. Eq. 8 has none; with L2-normalised blocks the distance
            difference is bounded by about +-2 per block (ARPL's features are not unit-norm, so
            its distances have the range that normalised blocks lose), and with s = 1 the
            probabilities stay near uniform and training does not fit (``docs/interpretation.md``,
            reading 12). 1.0 is Eq. 8 as written.
        cuep_init: how CUEP's learnable whole inputs start: ``"noise"`` (paper, Sec. 3.4: Gaussian
            noise of ``cuep_init_std``) or ``"clips"`` (data-informed, beyond the paper: class k's
            positive prompt starts as the training clip of class k nearest its class mean, its
            negative prompt as the training clip of another class nearest the mean of the other
            classes, by cosine of the unprompted, centred features; chosen in :meth:`HCEP.setup`).
        normalize_blocks: L2-normalise each modality's feature before concatenation.
        center_blocks: subtract each block's mean over the training clips (unprompted features,
            computed once in :meth:`HCEP.setup`) before the normalisation, from sample and class
            features alike. Pooled encoder features are highly anisotropic (EmoDB clips through
            Whisper: mean pairwise cosine 0.92), so without centring D_neg - D_pos is nearly the same
            for every clip. See ``docs/interpretation.md``.
        standardize_blocks: also divide each dimension of a block, after centring, by its standard
            deviation over the same training clips (implies ``center_blocks``): z = (x - mean) / std
            per block, as the baseline heads standardise their input features
            (:class:`~openmer.methods.heads.FeatureEmbedding`). Beyond the paper (Sec. 3.5 does not
            say how F_M is scaled); pooled Whisper features have a few dimensions of much larger
            variance that dominate the cosine and the composite distance (``docs/interpretation.md``,
            reading 19).
        block_dropout: dropout probability on each block of the samples' F_M in training, after
            the centring / standardisation (where on) and before the L2 normalisation; class
            features are never dropped, scoring (eval mode) never. Beyond the paper (Sec. 3.5 has
            no regulariser); the baseline heads have dropout in their embedding
            (:class:`~openmer.methods.heads.FeatureEmbedding`), and with standardised blocks the
            prompts fit 250 EmoDB clips by epoch 5-8 while validation accuracy stalls
            (``docs/interpretation.md``, reading 21). 0 = off (paper).
        center_clips: at most this many training clips estimate the means (and deviations).
        block_weights: how the modality blocks' distances add up in D_neg and D_pos (Eq. 7-8):
            ``"equal"`` (paper: the plain sum) or ``"learned"`` (beyond the paper: w_m D_m with
            w = n_blocks x softmax(theta), theta learnable, starting equal; its parameter group is
            ``block_weights``). On EmoDB and RAVDESS every sentence is spoken in every emotion, so
            the text block carries no emotion (a nearest-class-mean classifier on it is at chance)
            and, summed with equal weight, adds per-sentence noise to every class's distance
            (``docs/interpretation.md``, reading 18).
        cuep_init_std: noise level of the learnable CUEP images/waveforms.
        cuep_audio_samples: length of the learnable CUEP waveforms (``None`` = the encoder's
            whole-input length, 80000 samples = 5 s at 16 kHz, as the paper).
    """

    method: str = "hcep"
    profile: ProfileConfig
    modalities: tuple[Literal["text", "video", "audio"], ...] = ("text", "video", "audio")
    n_prompt_tokens: int = Field(default=2, ge=1)
    prompt_init: str = "facial expression"
    positive_template: str = "This video is {}"
    negative_template: str = "This video is not {}"
    use_smep: bool = True
    use_cuep: bool = True
    use_loss_emo: bool = True
    use_loss_osr: bool = True
    dpol_streams: Literal["negative_and_positive", "negative_only"] = "negative_and_positive"
    text_prompts: Literal["learnable", "fixed", "learnable_with_labels"] = "learnable"
    dpol_features: Literal["hybrid", "text_only", "multimodal_only"] = "hybrid"
    cuep_text: Literal["fixed", "learnable_tokens", "learnable_tokens_with_labels"] = "fixed"
    confidence: Literal["max_probability", "max_logit", "energy"] = "max_probability"
    anchor: Literal["text", "video", "audio", "none"] = "text"
    emo_match: Literal["projection", "text_block"] = "projection"
    logit_scale: float = Field(default=30.0, gt=0)
    osr_logit_scale: float = Field(default=30.0, gt=0)
    cuep_init: Literal["noise", "clips"] = "noise"
    normalize_blocks: bool = True
    center_blocks: bool = False
    standardize_blocks: bool = False
    block_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    center_clips: int = Field(default=256, gt=0)
    block_weights: Literal["equal", "learned"] = "equal"
    cuep_init_std: float = Field(default=0.1, gt=0)
    cuep_audio_samples: int | None = Field(default=None, gt=0)
    seed: int = 0


@register("hcep")
class HCEP(OpenSetMethod[HCEPConfig]):
    """HCEP on any backbone profile.

    Input batch (see :class:`openmer.data.clips.ClipDataset`): ``"text"`` list[str] (B),
    ``"video"`` (B, N, C, S, S) frames as the vision encoder expects them, ``"audio"`` (B, T)
    16 kHz waveforms with ``"audio_lengths"`` (B,) in samples, ``"<modality>_present"`` (B,)
    bool, ``"label"`` (B,) int64. A modality the model uses but the batch lacks entirely is
    treated as absent for every sample.

    Raises:
        ConfigError: ``modalities`` empty or not in the profile, or ablation options that do not
            go together (see :func:`check_ablation_options`).
        MissingModalityError: a sample with none of the model's modalities.
    """

    config_class = HCEPConfig
    config: HCEPConfig
    modalities: tuple[str, ...]
    cuep: CUEP  # with use_cuep only
    text_pos: Tensor
    text_neg: Tensor
    #: ``--score``: Algorithm 1's max probability, or the max logit / energy of the DPOL logits
    scores: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "msp": {"confidence": "max_probability"}, "max_logit": {"confidence": "max_logit"},
        "energy": {"confidence": "energy"}}

    def __init__(self, config: HCEPConfig, known_classes: Sequence[str], encoders: dict[str, Encoder]):
        super().__init__(config, known_classes)
        mods: tuple[str, ...] = tuple(m for m in MODALITY_ORDER if m in config.modalities)
        if not mods:
            raise ConfigError("HCEP needs at least one modality")
        if "text" not in encoders:
            raise ConfigError("HCEP needs a text encoder (CUEP's class sentences and L_emo use it)")
        missing = [m for m in mods if m not in encoders]
        if missing:
            raise ConfigError(f"modalities {missing} have no encoder in profile {config.profile.name!r}")
        check_ablation_options(config, mods)
        if config.dpol_features == "text_only":  # Table 7: both streams on the text block alone
            mods = ("text",)
        self.modalities = mods
        self.encoders = nn.ModuleDict({m: frozen(e) for m, e in encoders.items() if m in mods or m == "text"})
        gen = torch.Generator().manual_seed(config.seed)
        text = self.encoders["text"]
        if not isinstance(text, TextEncoder):
            raise ConfigError(f"HCEP's text encoder must be a TextEncoder (token prompts, class sentences); "
                              f"got {type(text).__name__}")
        self.text_width = int(text.width)
        specs: dict[str, PromptSpec] = {m: self._encoder(m).prompt_spec() for m in mods if m != "text"}
        self.smep = _build_smep(config, text, specs, gen)
        dims = {m: int(self._encoder(m).embed_dim) for m in mods}
        self.block_dims = dims
        if config.block_weights == "learned":
            self.block_logits = nn.Parameter(torch.zeros(len(mods)))
        k = self.num_classes
        # Positive class features: the OSR stream's D_pos, and L_emo's F_M+ in "multimodal_only".
        self._osr_uses_pos = config.dpol_streams == "negative_and_positive"
        self._with_pos = self._osr_uses_pos or config.dpol_features == "multimodal_only"
        if config.use_cuep:
            lengths = {"audio": config.cuep_audio_samples} if config.cuep_audio_samples is not None else {}
            self.cuep = CUEP(k, {m: self._encoder(m) for m in specs}, init_std=config.cuep_init_std, generator=gen,
                             with_positive=self._with_pos, lengths=lengths)
        else:  # Table 6 "random": learnable class features instead of prompted ones
            rand_pos = {m: 0.1 * torch.randn(k, d, generator=gen) for m, d in dims.items()}
            if self._with_pos:
                self.random_pos = nn.ParameterDict({m: nn.Parameter(t) for m, t in rand_pos.items()})
            self.random_neg = nn.ParameterDict(
                {m: nn.Parameter(0.1 * torch.randn(k, d, generator=gen)) for m, d in dims.items()})
        # L_emo's query: "text_only" uses F_T itself, "multimodal_only" F_M against F_M+ (no projection)
        hybrid = config.dpol_features == "hybrid"
        if hybrid and config.emo_match == "projection":
            d_t = int(text.embed_dim)
            projection = {m: nn.Linear(d, d_t, bias=False) for m, d in dims.items()}
            with torch.no_grad():
                if "text" in projection and dims["text"] == d_t:
                    projection["text"].weight.copy_(torch.eye(d_t))
            self.emo_projection = nn.ModuleDict(projection)
        elif hybrid and "text" not in mods:
            raise ConfigError("emo_match='text_block' needs the text modality")
        pos, neg = class_sentences(self.known_classes, config.positive_template, config.negative_template)
        self._sentences = (pos, neg)
        if config.cuep_text != "fixed":  # Table 6 bottom: learnable CUEP text tokens
            words = [t.replace("{}", " ").strip() for t in (config.positive_template, config.negative_template)]
            pos_init, neg_init = (text.token_embeddings(w) for w in words)  # (n, width) each
            if config.cuep_text == "learnable_tokens_with_labels":
                self.cuep_text_pos = nn.Parameter(pos_init.clone())
                self.cuep_text_neg = nn.Parameter(neg_init.clone())
                self._cuep_texts = list(self.known_classes)
            else:
                tok_gen = torch.Generator().manual_seed(config.seed)
                n, width = neg_init.shape
                self.cuep_text_pos = nn.Parameter(0.02 * torch.randn(k, n, width, generator=tok_gen))
                self.cuep_text_neg = nn.Parameter(0.02 * torch.randn(k, n, width, generator=tok_gen))
                self._cuep_texts = [""] * k
        # Fixed CUEP text features: computed once per run (never per step or per clip).
        self.register_buffer("text_pos", torch.zeros(k, text.embed_dim), persistent=False)
        self.register_buffer("text_neg", torch.zeros(k, text.embed_dim), persistent=False)
        for m, d in dims.items():  # per-block training means (center_blocks), saved with the model
            self.register_buffer(f"block_mean_{m}", torch.zeros(d))
            if config.standardize_blocks:  # only then, so that older run folders keep loading
                self.register_buffer(f"block_std_{m}", torch.ones(d))
        self._text_ready = False
        # Eval-mode caches of what depends on the parameters, each stored with the parameter
        # version it was computed from (see _parameter_version): never reused after a change.
        self._class_cache: tuple[tuple, tuple[dict[str, Tensor], dict[str, Tensor]]] | None = None
        # hold_classes_fixed: the first n classes' whole-prompt features, encoded once, per modality
        self._fixed_classes = 0
        self._fixed_prompt_features: dict[str, Tensor] = {}
        self._text_cache: tuple[tuple, tuple[Tensor, Tensor]] | None = None

    # ---------------------------------------------------------------- construction
    @classmethod
    def build(cls, config: HCEPConfig, known_classes: Sequence[str], *, encoders: dict[str, Encoder] | None = None,
              device: str | torch.device = "cpu", **_: Any) -> Self:
        """Construct, loading the profile's encoders unless ``encoders`` are given."""
        if encoders is None:
            specs = config.profile.specs()
            needed = set(config.modalities) | {"text"}
            encoders = {m: load_encoder(s, device=device) for m, s in specs.items() if m in needed}
        return cls(config, known_classes, encoders)

    def _encoder(self, modality: str) -> Encoder:
        """The frozen encoder of a modality (every entry of ``encoders`` is an :class:`Encoder`)."""
        return cast(Encoder, self.encoders[modality])

    def _parameter_version(self) -> tuple:
        """Identity of the current values of every learnable tensor and buffer of the method
        (:func:`~openmer.methods.base.parameter_version`)."""
        return parameter_version(self)

    # ---------------------------------------------------------------- features
    @torch.no_grad()
    def _ensure_text_features(self) -> None:
        if not self._text_ready:
            pos, neg = self._sentences
            enc = self.encoders["text"]
            self.text_pos.copy_(enc(pos))
            self.text_neg.copy_(enc(neg))
            self._text_ready = True

    @property
    def _centred(self) -> bool:
        return self.config.center_blocks or self.config.standardize_blocks

    def _normalize(self, x: Tensor, modality: str, *, dropout: float = 0.0) -> Tensor:
        if self._centred:
            x = x - getattr(self, f"block_mean_{modality}")
        if self.config.standardize_blocks:
            x = x / getattr(self, f"block_std_{modality}")
        if dropout > 0:
            x = F.dropout(x, dropout, training=self.training)
        return F.normalize(x, dim=-1) if self.config.normalize_blocks else x

    @torch.no_grad()
    def setup(self, train: Iterable[Batch]) -> None:
        """Once before training, from the unprompted features of the training clips.

        - ``center_blocks``: per-block means over the first ``center_clips`` clips
          (``standardize_blocks``: and per-dimension standard deviations, 1 where constant to
          rounding, :func:`~openmer.methods.heads.feature_statistics`; a block constant over the
          training clips, e.g. every video the same still image, centres to exactly 0);
        - ``cuep_init="clips"``: the training clips CUEP's whole prompts start from (see
          :class:`HCEPConfig`); ``train`` is then read twice (it must be re-iterable, as a
          ``DataLoader`` without shuffling or a list of batches is).

        Args:
            train: iterable of training batches (known classes, ``"label"`` = class index).
        """
        cuep = getattr(self, "cuep", None)
        from_clips = self._cuep_from_clips() if self.config.cuep_init == "clips" and cuep is not None else []
        if not (self._centred or from_clips):
            return
        device = self.text_pos.device
        feats: dict[str, list[Tensor]] = {m: [] for m in self.modalities}
        masks: dict[str, list[Tensor]] = {m: [] for m in self.modalities}
        labels, seen = [], 0
        for batch in train:
            n = len(batch["label"])
            labels.append(torch.as_tensor(batch["label"]).cpu())
            for m in self.modalities:
                mask = modality_present(batch, m, n).to(device)
                f = torch.zeros(n, self.block_dims[m], device=device)
                if bool(mask.any()):
                    idx = mask.nonzero().squeeze(1)
                    f[idx] = self._encode(m, batch, idx, None)
                feats[m].append(f)
                masks[m].append(mask)
            seen += n
            if not from_clips and seen >= self.config.center_clips:
                break
        f_all = {m: torch.cat(v) for m, v in feats.items()}
        present = {m: torch.cat(v) for m, v in masks.items()}
        if self._centred:
            for m in self.modalities:
                rows = present[m][: self.config.center_clips]
                if bool(rows.any()):
                    mean, std = feature_statistics(f_all[m][: self.config.center_clips][rows])
                    getattr(self, f"block_mean_{m}").copy_(mean)
                    if self.config.standardize_blocks:
                        getattr(self, f"block_std_{m}").copy_(std)
        if from_clips:
            self._start_cuep_from_clips(from_clips, train, f_all, present, torch.cat(labels).to(device))

    def _cuep_from_clips(self) -> list[str]:
        """CUEP's modalities whose encoder can start whole prompts from real inputs
        (:attr:`~openmer.backbones.base.Encoder.starts_prompts_from_inputs`); the others keep their
        noise start under ``cuep_init="clips"`` (logged once, here)."""
        able = [m for m in self.cuep.negative if self._encoder(m).starts_prompts_from_inputs]
        if len(able) < len(self.cuep.negative):
            logger.info("cuep_init='clips': %s keep the noise start (their encoder cannot start prompts from clips)",
                        [m for m in self.cuep.negative if m not in able])
        return able

    def _start_cuep_from_clips(self, modalities: list[str], train: Iterable[Batch], feats: dict[str, Tensor],
                               present: dict[str, Tensor], labels: Tensor) -> None:
        """Choose per class and each of ``modalities`` (:meth:`_cuep_from_clips`) the clips CUEP
        starts from, then copy their inputs in."""
        chosen: dict[str, tuple[list[int], list[int]]] = {}
        for m in modalities:
            f = self._normalize(feats[m], m)
            pos: list[int] = []
            neg: list[int] = []
            for k in range(self.num_classes):
                for rows, out in (((labels == k) & present[m], pos), ((labels != k) & present[m], neg)):
                    idx = rows.nonzero().squeeze(1)
                    if len(idx) == 0:
                        raise ConfigError(f"cuep_init='clips' needs training clips with {m} for every class "
                                          f"and its complement; class {self.known_classes[k]!r} has none")
                    centre = F.normalize(f[idx].mean(0), dim=0)
                    out.append(int(idx[(f[idx] @ centre).argmax()]))
            chosen[m] = (pos, neg)
        wanted = {i for p, n in chosen.values() for i in p + n}
        inputs: dict[str, dict[int, tuple[Tensor, int | None]]] = {m: {} for m in chosen}
        offset = 0
        for batch in train:
            n = len(batch["label"])
            for i in range(offset, offset + n):
                if i in wanted:
                    for m in chosen:
                        lengths = batch.get(f"{m}_lengths")
                        x = torch.as_tensor(batch[m])[i - offset]
                        inputs[m][i] = (x, None if lengths is None else int(torch.as_tensor(lengths)[i - offset]))
            offset += n
            if offset > max(wanted):
                break
        def starts(m: str, rows: list[int]) -> Tensor:
            xs = [inputs[m][i][0] for i in rows]
            lens = [inputs[m][i][1] for i in rows]
            x = nn.utils.rnn.pad_sequence(xs, batch_first=True) if xs[0].dim() == 1 else torch.stack(xs)
            ln = None if lens[0] is None else torch.tensor(lens)
            return self._encoder(m).whole_prompts_from(x.to(self.text_pos.device), ln, length=self.cuep.lengths.get(m))

        for m, (pos_rows, neg_rows) in chosen.items():
            self.cuep.start_from(m, starts(m, pos_rows) if self._with_pos else None, starts(m, neg_rows))
        logger.info("CUEP prompts start from training clips: %s", dict(chosen))

    def _prompts(self) -> dict[str, Tensor]:
        return self.smep.prompts() if self.smep is not None else {}

    def sample_features(self, batch: Batch,
                        prompts: dict[str, Tensor] | None = None) -> tuple[dict[str, Tensor], Tensor]:
        """Prompted per-modality features of the samples (SMEP, Eq. 3).

        Args:
            batch: see the class docstring.
            prompts: SMEP's prompts if already computed this step (``None``: computed here).

        Returns:
            ``(blocks, present)``: modality -> (B, D_m) and (B, n_modalities) bool. Absent
            samples get a zero row that :func:`blockwise_composite_distance` leaves out. In
            training mode, ``block_dropout`` zeroes dimensions of each block (after centring /
            standardisation, before the L2 normalisation); in eval mode the blocks are
            deterministic.
        """
        prompts = self._prompts() if prompts is None else prompts
        n = len(batch["label"]) if "label" in batch else _batch_size(batch)
        device = self.text_pos.device
        blocks, present = {}, []
        for m in self.modalities:
            mask = modality_present(batch, m, n).to(device)
            feat = torch.zeros(n, self.block_dims[m], device=device)
            if bool(mask.any()):
                idx = mask.nonzero().squeeze(1)
                feat = feat.index_copy(0, idx, self._normalize(self._encode(m, batch, idx, prompts.get(m)), m,
                                                                dropout=self.config.block_dropout))
            blocks[m] = feat
            present.append(mask)
        present_t = torch.stack(present, dim=1)
        if bool((~present_t.any(1)).any()):
            bad = (~present_t.any(1)).nonzero().squeeze(1).tolist()
            raise MissingModalityError(
                f"samples {bad} of the batch have none of the model's modalities {self.modalities}")
        return blocks, present_t

    def _encode(self, m: str, batch: Batch, idx: Tensor, prompt: Tensor | None) -> Tensor:
        encoded = batch.get(ENCODED_SAMPLES, {}).get(m)  # encode_samples_once: F_m before normalisation
        if encoded is not None:
            return encoded.to(self.text_pos.device)
        return self._encoder(m).encode_batch(batch, idx, prompts=prompt)

    @torch.no_grad()
    def encode_samples_once(self, batch: Batch) -> Batch:
        """``batch`` with each present modality's SMEP-prompted encoding (Eq. 3, before the
        normalisation and block dropout, which still run per step) under ``ENCODED_SAMPLES``: the
        frozen encoders and SMEP's prompts do not depend on the class-indexed CUEP prompts, so a
        loop that tunes only those (enrolment) encodes each clip once instead of at every step."""
        if ENCODED_SAMPLES in batch:
            return batch
        prompts = self._prompts()
        n = len(batch["label"]) if "label" in batch else _batch_size(batch)
        encoded = {}
        for m in self.modalities:
            mask = modality_present(batch, m, n).to(self.text_pos.device)
            if bool(mask.any()):
                encoded[m] = self._encode(m, batch, mask.nonzero().squeeze(1), prompts.get(m)).detach()
        return {**batch, ENCODED_SAMPLES: encoded}

    def class_text_features(self, prompts: dict[str, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """F_T+ and F_T- (K, D_T), not normalised: the encoded class sentences (CUEP, Eq. 4).

        Fixed sentences are encoded once per run. With ``text_prompts="learnable_with_labels"``
        the sentences also carry SMEP's text tokens, and with a learnable ``cuep_text`` they are
        CUEP's own learnable tokens; both are re-encoded every training step (cached in eval mode).
        """
        learnable_text = self.config.cuep_text != "fixed"
        if self.config.text_prompts != "learnable_with_labels" and not learnable_text:
            self._ensure_text_features()
            return self.text_pos, self.text_neg
        version = None if self.training else self._parameter_version()
        if version is not None and self._text_cache is not None and self._text_cache[0] == version:
            return self._text_cache[1]
        k = self.num_classes
        if learnable_text:  # CUEP's own tokens (cuep_text), not SMEP's
            def tokens(p: Tensor) -> Tensor:  # (K, n, width): a shared context repeated per class
                return p if p.dim() == 3 else p.unsqueeze(0).expand(k, -1, -1)

            enc = self.encoders["text"]
            out = (enc(self._cuep_texts, prompts=tokens(self.cuep_text_pos)),
                   enc(self._cuep_texts, prompts=tokens(self.cuep_text_neg)))
        else:
            prompts = self._prompts() if prompts is None else prompts
            pos, neg = self._sentences
            both = self.encoders["text"](pos + neg, prompts=prompts["text"])  # (2K, D_T)
            out = (both[:k], both[k:])
        if version is not None:
            self._text_cache = (version, (out[0].detach(), out[1].detach()))
        return out

    def class_features(self, prompts: dict[str, Tensor] | None = None,
                       text: tuple[Tensor, Tensor] | None = None) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """F_M+ and F_M- per block: modality -> (K, D_m) (CUEP, Eq. 4).

        Text blocks are the class sentences (:meth:`class_text_features`, or ``text`` when
        already computed this step); vision/audio blocks encode the learnable whole-input
        prompts. Without positives (``dpol_streams="negative_only"``) the first dict is empty.
        In eval mode the result is cached with the parameter version it was computed from
        (computed once per loaded model; recomputed whenever a parameter or buffer changes).
        """
        self._ensure_text_features()  # fills the fixed-sentence buffers before the version is read
        version = None if self.training else self._parameter_version()
        if version is not None and self._class_cache is not None and self._class_cache[0] == version:
            return self._class_cache[1]
        k = self.num_classes
        pos: dict[str, Tensor] = {}
        neg: dict[str, Tensor] = {}
        f_pos: Tensor | None
        for m in self.modalities:
            if not self.config.use_cuep:
                if self._with_pos:
                    pos[m] = self.random_pos[m]
                neg[m] = self.random_neg[m]
                continue
            if m == "text":
                f_pos, f_neg = text if text is not None else self.class_text_features(prompts)
            else:
                # one batch: (2K, D) positives then negatives, or (K, D)
                both = self._whole_prompt_features(m)
                f_pos, f_neg = (both[:k], both[k:]) if self._with_pos else (None, both)
            if self._with_pos and f_pos is not None:  # (f_pos is set whenever _with_pos is)
                pos[m] = self._normalize(f_pos, m)
            neg[m] = self._normalize(f_neg, m)
        if version is not None:
            out = ({m: t.detach() for m, t in pos.items()}, {m: t.detach() for m, t in neg.items()})
            self._class_cache = (version, out)
            return out
        return pos, neg

    def hold_classes_fixed(self, n: int) -> None:
        """While ``n`` > 0, the CUEP whole-input prompts of the first ``n`` classes go through the
        encoder once (their features are kept) and only the other classes' at every call: enrolment
        tunes only the new class's prompts (:meth:`OpenSetMethod.hold_classes_fixed`)."""
        self._fixed_classes = int(n)
        self._fixed_prompt_features = {}

    def _whole_prompt_features(self, m: str) -> Tensor:
        """(2K, D) the positive then negative CUEP inputs of modality ``m`` through its encoder ((K, D)
        without positives); the rows of the classes held fixed come from their kept features."""
        inputs = self.cuep.inputs(m)
        k0, k = self._fixed_classes, self.num_classes
        if not 0 < k0 < k:
            return self._encoder(m).encode_whole_prompts(inputs)
        halves = range(len(inputs) // k)  # positives and negatives, or negatives only
        fixed = torch.cat([torch.arange(h * k, h * k + k0) for h in halves]).to(inputs.device)
        tuned = torch.cat([torch.arange(h * k + k0, (h + 1) * k) for h in halves]).to(inputs.device)
        kept = self._fixed_prompt_features.get(m)
        if kept is None:
            with torch.no_grad():
                kept = self._encoder(m).encode_whole_prompts(inputs[fixed]).detach()
            self._fixed_prompt_features[m] = kept
        both = torch.cat([kept, self._encoder(m).encode_whole_prompts(inputs[tuned])])
        return both[torch.argsort(torch.cat([fixed, tuned]))]

    def _distances(self, blocks: dict[str, Tensor], present: Tensor,
                   classes: tuple[dict[str, Tensor], dict[str, Tensor]]) -> tuple[Tensor, Tensor | None]:
        """(D_neg, D_pos), each (N, K); D_pos is ``None`` with ``dpol_streams="negative_only"``."""
        pos, neg = classes
        f = [blocks[m] for m in self.modalities]
        w = self.block_weight_values()
        d_neg = blockwise_composite_distance(f, [neg[m] for m in self.modalities], present, w)
        if not self._osr_uses_pos:
            return d_neg, None
        d_pos = blockwise_composite_distance(f, [pos[m] for m in self.modalities], present, w)
        return d_neg, d_pos

    def block_weight_values(self) -> Tensor | None:
        """(n_blocks,) the weights of the blocks' distances (``block_weights="learned"``: n_blocks x
        softmax(theta), mean 1), or ``None`` (equal weights, the paper's sum)."""
        logits = getattr(self, "block_logits", None)
        return None if logits is None else len(self.modalities) * torch.softmax(logits, 0)

    def _emo_query(self, blocks: dict[str, Tensor], present: Tensor) -> Tensor:
        if self.config.emo_match == "text_block" or self.config.dpol_features == "text_only":
            return blocks["text"]
        parts = [self.emo_projection[m](blocks[m]) * present[:, i : i + 1] for i, m in enumerate(self.modalities)]
        return torch.stack(parts, 0).sum(0)

    def _emotion_logits(self, blocks: dict[str, Tensor], present: Tensor, prompts: dict[str, Tensor],
                        text: tuple[Tensor, Tensor] | None = None,
                        classes: tuple[dict[str, Tensor], dict[str, Tensor]] | None = None) -> Tensor:
        """(N, K) logits of the emotion stream (Eq. 5-6): scale x cos(query, F_T+), or with
        ``dpol_features="multimodal_only"`` scale x cos(F_M, F_M+)."""
        if self.config.dpol_features == "multimodal_only":
            pos, _ = classes if classes is not None else self.class_features(prompts, text)
            cos = blockwise_cosine([blocks[m] for m in self.modalities], [pos[m] for m in self.modalities], present)
            return self.config.logit_scale * cos
        t_pos = (text if text is not None else self.class_text_features(prompts))[0]
        return emotion_logits(self._emo_query(blocks, present), t_pos, self.config.logit_scale)

    # ---------------------------------------------------------------- interface
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``smep_tokens`` (SMEP's learnable prompts: P_T, or an anchor's own prompts),
        ``smep_projections`` (N_V, N_A), ``cuep`` (the whole-input prompts, learnable CUEP text
        tokens of an ablation, or the random class features without CUEP), ``emo_projection`` (L_emo's
        per-block maps) and, with ``block_weights="learned"``, ``block_weights``."""
        groups: dict[str, list[nn.Parameter]] = {"smep_tokens": [], "smep_projections": [], "cuep": [],
                                                 "emo_projection": []}
        if self.config.block_weights == "learned":
            groups["block_weights"] = []
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            if name == "block_logits":
                groups["block_weights"].append(p)
            elif name.startswith("smep.projections."):
                groups["smep_projections"].append(p)
            elif name.startswith("smep."):
                groups["smep_tokens"].append(p)
            elif name.startswith(("cuep.", "cuep_text_", "random_pos.", "random_neg.")):
                groups["cuep"].append(p)
            else:
                groups["emo_projection"].append(p)
        return groups

    @torch.no_grad()
    def diagnostics(self) -> dict[str, float]:
        """Mean pairwise cosine of the K class features per block, for F_M+ (``class_cos_pos_<m>``)
        and F_M- (``class_cos_neg_<m>``): near 1, the class prompts barely differ; with learned
        block weights, each block's weight (``block_weight_<m>``)."""
        was = self.training
        self.eval()
        pos, neg = self.class_features()
        self.train(was)
        out = {}
        for kind, feats in (("pos", pos), ("neg", neg)):
            for m, f in feats.items():
                c = F.normalize(f, dim=-1) @ F.normalize(f, dim=-1).t()
                k = len(c)
                out[f"class_cos_{kind}_{m}"] = float((c.sum() - c.diagonal().sum()) / max(k * (k - 1), 1))
        w = self.block_weight_values()
        if w is not None:
            out.update({f"block_weight_{m}": float(v) for m, v in zip(self.modalities, w, strict=True)})
        return out

    def _osr_logits(self, blocks: dict[str, Tensor], present: Tensor,
                    classes: tuple[dict[str, Tensor], dict[str, Tensor]]) -> Tensor:
        """s (D_neg - D_pos) (N, K): the DPOL logits (Eq. 8, with ``osr_logit_scale`` s)."""
        d_neg, d_pos = self._distances(blocks, present, classes)
        return self.config.osr_logit_scale * osr_logits(d_neg, d_pos)

    def _streams(self, batch: Batch, *, emo: bool, osr: bool) -> tuple[Tensor | None, Tensor | None]:
        """One pass of the samples through the prompted encoders: (emotion logits, DPOL logits),
        each (B, K) or ``None`` when not asked for (Eq. 5-8)."""
        emo_out, osr_out, _ = self._streams_and_blocks(batch, emo=emo, osr=osr)
        return emo_out, osr_out

    def _streams_and_blocks(self, batch: Batch, *, emo: bool, osr: bool
                            ) -> tuple[Tensor | None, Tensor | None, dict[str, Tensor]]:
        """:meth:`_streams` and the prompted blocks F_m (modality -> (B, D_m)) they come from."""
        prompts = self._prompts()
        blocks, present = self.sample_features(batch, prompts)
        text = self.class_text_features(prompts)  # once per step (prompted with "learnable_with_labels")
        classes = None
        if osr or (emo and self.config.dpol_features == "multimodal_only"):
            classes = self.class_features(prompts, text)
        osr_out = self._osr_logits(blocks, present, classes) if osr and classes is not None else None
        emo_out = self._emotion_logits(blocks, present, prompts, text, classes) if emo else None
        return emo_out, osr_out, blocks

    def _loss_output(self, emo: Tensor | None, osr: Tensor | None, labels: Tensor) -> LossOutput:
        terms = {}
        if osr is not None:
            terms["loss_osr"] = F.cross_entropy(osr, labels)
        if emo is not None:
            terms["loss_emo"] = F.cross_entropy(emo, labels)
        return LossOutput(terms, osr if osr is not None else emo)

    def _scores(self, emo: Tensor | None, osr: Tensor | None) -> OpenSetScores:
        logits = osr if self.config.use_loss_osr else emo  # without L_osr: the emotion stream
        assert logits is not None  # the callers compute the stream that predicts
        return self._scores_of(logits)

    def _scores_of(self, logits: Tensor) -> OpenSetScores:
        """Scores from the (B, K) logits that predict: the configured ``confidence``."""
        if torch.isnan(logits).any():
            raise ValueError("NaN in the DPOL distances")
        probs = torch.softmax(logits, 1)
        conf, pred = probs.max(dim=1)
        if self.config.confidence == "max_logit":
            conf = logits.max(dim=1).values
        elif self.config.confidence == "energy":
            conf = torch.logsumexp(logits, dim=1)
        return OpenSetScores(conf, pred, probs)

    def training_step(self, batch: Batch) -> LossOutput:
        """L = L_emo + L_osr (Eq. 9), each switchable for ablations; logits = the stream that predicts."""
        labels = torch.as_tensor(batch["label"], device=self.text_pos.device)
        emo, osr = self._streams(batch, emo=self.config.use_loss_emo, osr=self.config.use_loss_osr)
        return self._loss_output(emo, osr, labels)

    def loss(self, batch: Batch) -> Tensor:
        """L = L_emo + L_osr (Eq. 9)."""
        return self.training_step(batch).total

    @torch.no_grad()
    def score(self, batch: Batch) -> OpenSetScores:
        """Algorithm 1: p = softmax(s (D_neg - D_pos)), confidence = max p, prediction = argmax p
        (s = ``osr_logit_scale``).

        Ablations: ``dpol_streams="negative_only"`` gives p = softmax(s D_neg); without L_osr the
        emotion stream's probabilities are used.
        """
        return self.score_with_features(batch)[0]

    @torch.no_grad()
    def score_with_features(self, batch: Batch) -> tuple[OpenSetScores, Tensor]:
        """:meth:`score` and F_M (B, sum D_m) from the same pass through the encoders."""
        out = self.head(batch)
        return self._scores_of(out.logits), out.features

    @torch.no_grad()
    def head(self, batch: Batch) -> HeadOutputs:
        """The classifier head post-hoc scores read (:mod:`openmer.methods.posthoc`): (B, K) the
        logits the prediction is the argmax of (z = s (D_neg - D_pos), or the emotion stream's
        without L_osr) and (B, sum D_m) F_M, from one pass through the prompted encoders."""
        emo, osr, blocks = self._streams_and_blocks(batch, emo=not self.config.use_loss_osr,
                                                    osr=self.config.use_loss_osr)
        logits = osr if self.config.use_loss_osr else emo
        assert logits is not None  # computed just above
        return HeadOutputs(logits, torch.cat([blocks[m] for m in self.modalities], dim=1))

    @torch.no_grad()
    def evaluate_batch(self, batch: Batch) -> tuple[Tensor | None, OpenSetScores]:
        """Validation loss and scores from one pass of the samples through the encoders."""
        emo, osr = self._streams(batch, emo=self.config.use_loss_emo or not self.config.use_loss_osr,
                                 osr=self.config.use_loss_osr)
        scores = self._scores(emo, osr)
        labels = torch.as_tensor(batch["label"], device=self.text_pos.device)
        known = labels >= 0
        if not bool(known.any()):
            return None, scores
        emo_k = emo[known] if emo is not None and self.config.use_loss_emo else None
        osr_k = osr[known] if osr is not None else None
        return self._loss_output(emo_k, osr_k, labels[known]).total, scores

    @torch.no_grad()
    def text_query(self, features: Tensor) -> Tensor:
        """(B, D_T) L_emo's query of F_M (B, sum D_m) (Eq. 5): the learned per-block projections to the
        text dimension, summed over the blocks present (an all-zero block is absent), or F_T itself
        (``emo_match="text_block"``, ``dpol_features="text_only"``): what training compared with F_T+.

        Raises:
            NotSupportedError: ``dpol_features="multimodal_only"`` (L_emo compares F_M with F_M+, not text).
        """
        if self.config.dpol_features == "multimodal_only":
            raise NotSupportedError("HCEP with dpol_features='multimodal_only' aligns F_M with F_M+, not with text")
        widths = [self.block_dims[m] for m in self.modalities]
        parts = torch.split(features.to(self.text_pos.device, torch.float32), widths, dim=1)
        blocks = dict(zip(self.modalities, parts, strict=True))
        present = torch.stack([p.abs().sum(1) > 0 for p in parts], dim=1)
        return self._emo_query(blocks, present)

    def class_parameters(self) -> tuple[str, ...]:
        """CUEP's per-class whole-input prompts (and learnable per-class CUEP text tokens, or the
        random class features without CUEP): a new class adds one row to each; the class sentences
        of fixed CUEP text come from the class name itself."""
        k = self.num_classes
        return tuple(n for n, t in self.trainable_state_dict().items()
                     if n.startswith(("cuep.", "random_pos.", "random_neg.", "cuep_text_"))
                     and t.dim() >= (3 if n.startswith("cuep_text_") else 1) and t.shape[0] == k)

    def input_encoders(self) -> dict[str, nn.Module]:
        """The frozen encoders HCEP runs its clips through (its modalities' and the text encoder)."""
        return dict(self.encoders.items())

    @torch.no_grad()
    def features(self, batch: Batch) -> Tensor:
        """F_M (B, sum D_m): the prompted multimodal features (for t-SNE, Figs. 6 and 8)."""
        blocks, _ = self.sample_features(batch)
        return torch.cat([blocks[m] for m in self.modalities], dim=1)


def _build_smep(config: HCEPConfig, text: TextEncoder, specs: dict[str, PromptSpec],
                gen: torch.Generator) -> SMEP | None:
    """SMEP's prompts (or ``None`` for the ablation without SMEP)."""
    from openmer.methods.hcep.smep import SMEP

    if not config.use_smep:
        return None
    init = text.token_embeddings(config.prompt_init)
    try:
        return SMEP(init, config.n_prompt_tokens, specs, anchor=config.anchor,
                    learnable_text=config.text_prompts != "fixed", generator=gen)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def check_ablation_options(config: HCEPConfig, modalities: Sequence[str]) -> None:
    """Reject ablation options that do not go together (HCEP Tables 5-7, Fig. 4).

    Raises:
        ConfigError: ``text_prompts``/``anchor`` changed without SMEP; ``text_prompts="fixed"``
            with a video/audio anchor (the text tokens are then projections, not fixed);
            ``dpol_features="text_only"`` without the text modality; an anchor modality that is
            not among the blocks the model uses.
    """
    if not config.use_smep and (config.text_prompts != "learnable" or config.anchor != "text"):
        raise ConfigError("text_prompts and anchor choose SMEP's prompts; they need use_smep=True")
    if config.text_prompts == "fixed" and config.anchor in ("video", "audio"):
        raise ConfigError(f"text_prompts='fixed' needs anchor 'text' or 'none' (with anchor={config.anchor!r} "
                          "the text tokens are projections of the anchor)")
    if config.dpol_features == "text_only" and "text" not in modalities:
        raise ConfigError("dpol_features='text_only' needs the text modality")
    used = ("text",) if config.dpol_features == "text_only" else tuple(modalities)
    if config.anchor in ("video", "audio") and config.anchor not in used:
        raise ConfigError(f"anchor={config.anchor!r} needs the {config.anchor} modality among the blocks used "
                          f"({', '.join(used)})")


def _batch_size(batch: Batch) -> int:
    for m in ("text", "audio", "video"):
        if m in batch:
            return len(batch[m])
    raise MissingModalityError("empty batch: no text, audio or video")
