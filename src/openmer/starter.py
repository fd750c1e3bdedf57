"""``openmer starter``: a ready speech model with its model card, trained here in minutes.

What it trains (decided once, written into the card):

* **Data**: EmoDB and RAVDESS speech together, their labels mapped to the shared vocabulary
  (:mod:`openmer.datasets.vocabulary`: RAVDESS's ``angry`` is ``anger``). Each corpus keeps its
  protocol's speaker partition (``splits/emodb.json``: 6 / 2 / 2 speakers, ``splits/ravdess-speech.json``:
  actors 01-16 / 17-20 / 21-24): the training and validation speakers of both train the model, the
  held-out (test) speakers of both score it for the card.
* **Known classes** (:data:`KNOWN`): anger, happiness, neutral, sadness: the four-class set of
  speech emotion recognition (IEMOCAP's usual four), all of them shared by both corpora. The two
  other shared emotions, fear and disgust, are kept as **unknowns**, so that both corpora's test
  speakers hold unknowns of the shared vocabulary besides the classes one corpus alone has
  (EmoDB's boredom, RAVDESS's calm and surprise).
* **Modality**: audio only (no transcript needed to use it; both corpora speak fixed sentences in
  every emotion, so their transcripts carry no emotion).
* **Method** (:data:`METHOD`): ARPL on the frozen encoders' unprompted features, the method the
  benchmarks here rank first on open-set speech by OSCR (:data:`METHOD_CHOICE`); HCEP is not first
  on these tables, so it is not the starter's method. Its schedule: ``--preset cpu``
  (:mod:`openmer.training.presets`).
* **Card rows**: each corpus's held-out speakers, scored by this model; and, when
  ``cross_corpus``, the same recipe trained on one corpus alone and scored on the other corpus's
  held-out speakers (the cross-corpus rows: seconds each, the features are cached).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from openmer.backbones.specs import ProfileConfig
from openmer.data.clips import ClipDataset, vision_preprocess
from openmer.data.manifest import Manifest, concat_manifests, label_indices
from openmer.datasets import resolve_data
from openmer.datasets.vocabulary import common_classes, shared_manifest
from openmer.errors import ConfigError
from openmer.inference import load_run, score_clips
from openmer.methods.registry import get_method
from openmer.model_card import CardRow, card_row, write_model_card
from openmer.paths import default_cache_dir
from openmer.runs import holds_run, read_run_info
from openmer.training.engine import ProgressFn
from openmer.training.presets import resolve_preset
from openmer.training.run import train

__all__ = ["CORPORA", "KNOWN", "METHOD", "METHOD_CHOICE", "MODALITIES", "build_starter", "starter_manifest"]

#: the corpora, by their registered names (``--data NAME`` or ``NAME=PATH`` reads each)
CORPORA: tuple[str, ...] = ("emodb", "ravdess-speech")
#: the known classes (shared names); the other classes of both corpora are unknown (module docstring)
KNOWN: tuple[str, ...] = ("anger", "happiness", "neutral", "sadness")
MODALITIES: tuple[str, ...] = ("audio",)
METHOD = "arpl"
#: where the method comes from (the card says it)
METHOD_CHOICE = (
    "Chosen as the method the benchmarks here rank first on open-set speech by OSCR: "
    "docs/results/emodb-dropout/results.md (EmoDB speech + transcript, mean over the 4 openness levels: "
    "ARPL 54.7, CPN 54.3, LPL 53.9, MSP 52.8, HCEP 51.0, CSSR 31.3) and docs/results/ravdess-dropout/results.md "
    "(RAVDESS real audio, audio_wav: ARPL 54.9, LPL 54.3, CPN 53.9, MSP 52.5; text+audio_wav: ARPL 54.3, "
    "HCEP 46.9); HCEP, the library's main method, is not first on these CPU tables")
#: the name of the manifest the starter writes into its run folder (the clips it trained on)
MANIFEST_FILE = "starter-manifest.csv"


def starter_manifest(sources: Mapping[str, str] | None = None, *, max_per_class: int | None = None,
                     seed: int = 0) -> Manifest:
    """Both corpora as one manifest: shared label names, ids and groups ``"<corpus>/..."``, and
    each row's ``split`` from its corpus's protocol partition (train / val / test speakers).

    Args:
        sources: corpus -> what ``--data`` would name (``"emodb"``, ``"emodb=PATH"``); default the
            shared copies.
        max_per_class: keep at most this many clips per (corpus, split, class), seeded (a tiny
            budget for tests); ``None`` = all.
        seed: the seed of that choice.

    Raises:
        ConfigError / DataError / SharedDataMissing: as :func:`openmer.datasets.resolve_data`.
    """
    sources = dict(sources or {c: c for c in CORPORA})
    parts: dict[str, Manifest] = {}
    rng = np.random.default_rng(seed)
    for corpus in CORPORA:
        manifest, partition = resolve_data(sources.get(corpus, corpus))
        if partition is None:  # pragma: no cover - a built-in dataset comes with its protocol
            raise ConfigError(f"{corpus}: no protocol partition")
        part_of = {g: p for p in ("train", "val", "test") for g in getattr(partition, f"{p}_groups")}
        rows = [replace(s, split=part_of.get(s.group or s.id)) for s in shared_manifest(manifest, corpus)]
        rows = [s for s in rows if s.split is not None]
        if max_per_class is not None:
            cells: dict[tuple[str | None, str | None], list[int]] = {}
            for i, s in enumerate(rows):
                cells.setdefault((s.split, s.label), []).append(i)
            keep = sorted(int(i) for idx in cells.values()
                          for i in rng.permutation(idx)[:max_per_class])
            rows = [rows[i] for i in keep]
        parts[corpus] = replace(manifest, samples=rows)
    return concat_manifests(parts, name="starter")


def _corpus(sample_id: str) -> str:
    return sample_id.split("/", 1)[0]


def _rows(run_dir: Path, test: Manifest, *, trained_on: str, model: str, cache_dir: Path,
          profile: str | ProfileConfig, only: Sequence[str] = CORPORA) -> list[CardRow]:
    """Card rows of the run in ``run_dir`` on each corpus's test rows of ``test``."""
    run = load_run(run_dir, profile=profile if isinstance(profile, ProfileConfig) else None)
    known = run.known_classes
    labels = label_indices(test.labels, known)
    clips = ClipDataset(test, labels, run.modalities, vision_preprocess=vision_preprocess(run.encoders))
    s = score_clips(run, clips, cache_dir=cache_dir)
    conf, pred = s.confidence.numpy(), s.prediction.numpy()
    corpus = np.array([_corpus(x.id) for x in test])
    out = []
    for c in only:
        m = corpus == c
        if not (labels[m] >= 0).any() or not (labels[m] < 0).any():
            continue
        unknown = sorted({str(x.label) for x, keep in zip(test, m, strict=True) if keep} - set(known))
        out.append(card_row(f"{c}, held-out speakers", conf[m], pred[m], labels[m], run.info.threshold.value,
                            num_classes=len(known), trained_on=trained_on, tested_on=c, unknown_classes=unknown,
                            model=model))
    return out


def build_starter(out: str | Path, *, profile: str | ProfileConfig = "offline",
                  sources: Mapping[str, str] | None = None, max_per_class: int | None = None,
                  epochs: int | None = None, cross_corpus: bool = True, overwrite: bool = False,
                  cache_dir: str | Path | None = None, progress: ProgressFn | None = None,
                  say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train the starter model into ``out`` (module docstring), score its held-out speakers and write its card.

    Args:
        out: the run folder (``openmer predict OUT clip.wav`` uses it).
        profile: the encoders (default ``offline``: Whisper-base).
        sources: corpus -> ``--data`` value (a user's copy: ``"emodb=PATH"``); default the shared copies.
        max_per_class / epochs: a smaller budget (tests): clips per (corpus, split, class), epochs.
        cross_corpus: also train the recipe on each corpus alone and score the other (card rows).
        overwrite: replace a run ``out`` holds.
        cache_dir: the feature cache (default :func:`openmer.paths.default_cache_dir`).
        progress: called after each epoch of the main model (:func:`openmer.training.fit`).
        say: called with one line per stage.

    Returns:
        ``{"run_dir", "seconds", "rows": [CardRow, ...], "card"}``.

    Raises:
        ConfigError: ``out`` holds a run (without ``overwrite``); as :func:`openmer.training.run.train`.
        SharedDataMissing / DataError: a corpus or an encoder cannot be read.
    """
    t0 = time.perf_counter()
    out = Path(out)
    found = holds_run(out)
    if found and not overwrite:
        raise ConfigError(f"{out}: already holds a run ({', '.join(found)}); pass --overwrite to replace it")
    missing = sorted(set(KNOWN) - set(common_classes(*CORPORA)))
    if missing:  # pragma: no cover - the vocabulary's table would have changed
        raise ConfigError(f"starter known classes {missing} are not shared by {', '.join(CORPORA)}")
    tell = say or (lambda _line: None)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    manifest = starter_manifest(sources, max_per_class=max_per_class)
    preset = resolve_preset("cpu", get_method(METHOD))
    cfg = preset.train.model_copy(update={"epochs": epochs} if epochs is not None else {})
    out.mkdir(parents=True, exist_ok=True)
    train_rows = manifest.subset([i for i, s in enumerate(manifest) if s.split != "test"])
    test = manifest.subset([i for i, s in enumerate(manifest) if s.split == "test" and s.label])
    data = manifest.write(out / MANIFEST_FILE)
    tell(f"training {METHOD} on the known-class clips of {len(train_rows)} training and validation clips of "
         f"{' + '.join(CORPORA)} (known: {', '.join(KNOWN)})")
    run_dir = train(data, list(KNOWN), method=METHOD, profile=profile, out=out, train_config=cfg, preset="cpu",
                    modalities=list(MODALITIES), overwrite=overwrite, allow_outside_root=True, cache_dir=cache,
                    progress=progress)
    tell(f"scoring {len(test)} clips of the held-out speakers")
    both = " + ".join(CORPORA)
    rows = _rows(run_dir, test, trained_on=both, model="this model", cache_dir=cache, profile=profile)
    info = read_run_info(run_dir)
    train_seconds = time.perf_counter() - t0
    if cross_corpus:
        for source in CORPORA:
            other = [c for c in CORPORA if c != source]
            tell(f"cross-corpus: the same recipe trained on {source} alone, tested on {', '.join(other)}")
            sub = manifest.subset([i for i, s in enumerate(manifest) if _corpus(s.id) == source])
            with tempfile.TemporaryDirectory(prefix="openmer-starter-") as tmp:
                path = sub.write(Path(tmp) / "data.csv")
                single = train(path, list(KNOWN), method=METHOD, profile=profile, out=Path(tmp) / "run",
                               train_config=cfg, preset="cpu", modalities=list(MODALITIES), allow_outside_root=True,
                               cache_dir=cache)
                rows += _rows(single, test, trained_on=source, model=f"the same recipe trained on {source} only",
                              cache_dir=cache, profile=profile, only=other)
    seconds = time.perf_counter() - t0
    budget = (f"`openmer starter`: {train_seconds / 60:.1f} min to encode, train and score this model"
              + (f", {seconds / 60:.1f} min with the cross-corpus rows" if cross_corpus else "")
              + f", on {os.cpu_count()} CPU core(s) with {torch.get_num_threads()} torch thread(s); "
              f"{info.n_train} training + {info.n_val} validation clips of the known classes, {len(test)} test clips")
    card = write_model_card(run_dir, rows=rows, datasets=list(CORPORA), method_choice=METHOD_CHOICE, budget=budget,
                            title=f"openmer starter: speech emotion ({', '.join(KNOWN)}) or unknown",
                            unknown_note="Its unknowns on the card: fear and disgust (kept out of training although "
                                         "both corpora have them), EmoDB's boredom, RAVDESS's calm and surprise.")
    return {"run_dir": run_dir, "seconds": seconds, "rows": rows, "card": card}
