"""The model card of a run folder: ``README.md`` with Hugging Face model-card metadata.

A run folder can be published as a Hugging Face model repository as it is: its ``README.md``
starts with the YAML metadata the hub reads (licence, tags, datasets, metrics, ``model-index``
with the measured results) and says, in words, what the model knows, what "unknown" means for it,
what it was trained on (licences and citations from the datasets' declarations,
:attr:`openmer.datasets.DatasetSpec.license`), how, how well on held-out speakers (with seeded
bootstrap 95 % confidence intervals), the deployable threshold and how it was chosen, the intended
use and the limitations.

Every number comes from a measurement: the rows (:class:`CardRow`, one per test set) are computed
from the scores of a test set by :func:`card_row` and kept in ``card.json`` beside the card, so
the card can be written again (``openmer train`` writes it without rows; ``openmer evaluate`` and
``openmer starter`` add theirs). Nothing in a card is read back as code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import Field

from openmer.config import OpenmerConfig
from openmer.datasets.registry import DATASETS
from openmer.files import atomic_write_json, atomic_write_text
from openmer.metrics import auroc, closed_set_accuracy, operating_point, oscr
from openmer.runs import CARD_FILE, CARD_ROWS_FILE, RunInfo, read_json, read_run_info

__all__ = ["CARD_FILE", "CARD_ROWS_FILE", "CardNotes", "CardRow", "Estimate", "bootstrap", "card_row",
           "read_card_notes", "render_model_card", "write_model_card"]

#: bootstrap resamples of a card's confidence intervals
N_BOOT = 1000

#: the card's metrics: key -> (name in the card, Hugging Face metric type)
METRICS: dict[str, tuple[str, str]] = {
    "auroc": ("AUROC", "roc_auc"),
    "oscr": ("OSCR", "oscr"),
    "closed_acc": ("closed-set accuracy", "accuracy"),
    "fpr_at_threshold": ("FPR at the threshold", "fpr"),
}


class Estimate(OpenmerConfig):
    """A measured value with its bootstrap 95 % confidence interval (fractions)."""

    value: float
    low: float
    high: float

    def text(self) -> str:
        return f"{100 * self.value:.1f} [{100 * self.low:.1f}, {100 * self.high:.1f}]"


class CardRow(OpenmerConfig):
    """The metrics of one test set (:func:`card_row`).

    Attributes:
        name: what was tested, e.g. ``"EmoDB, held-out speakers"``.
        trained_on / tested_on: corpora (``"emodb"``, ``"ravdess-speech"``, ``"emodb + ravdess-speech"``).
        shift: ``"in-corpus"`` (the test corpus was trained on) or ``"cross-corpus"`` (it was not).
        model: ``"this model"`` or what else was trained for the row (a cross-corpus row's model
            trained on one corpus only).
        n_known / n_unknown: test clips of known and of unknown classes.
        unknown_classes: the test set's classes outside the known ones.
        auroc, oscr, closed_acc, fpr_at_threshold: the metrics with their intervals;
            ``fpr_at_threshold`` = unknown clips accepted as known at the deployable threshold.
        tpr_at_threshold: known clips accepted at the threshold (no interval).
    """

    name: str
    trained_on: str
    tested_on: str
    shift: Literal["in-corpus", "cross-corpus"] = "in-corpus"
    model: str = "this model"
    n_known: int = Field(ge=1)
    n_unknown: int = Field(ge=1)
    unknown_classes: list[str] = Field(default_factory=list)
    auroc: Estimate
    oscr: Estimate
    closed_acc: Estimate
    fpr_at_threshold: Estimate
    tpr_at_threshold: float


class CardNotes(OpenmerConfig):
    """What the card says beyond ``run.json`` (kept in ``card.json`` with the rows).

    Attributes:
        title: the card's heading (default: the method and the known classes).
        datasets: built-in dataset names the model was trained on (licences and citations come
            from their declarations); default: the run's ``--data`` when it names one.
        method_choice: why this method (e.g. the benchmark table that ranks it first).
        budget: what training cost (time, machine).
        unknown_note: what an unknown is for this model, beyond "any class outside the known ones".
        rows: the measured test sets.
        bootstrap: how the intervals were made.
    """

    title: str = ""
    datasets: list[str] = Field(default_factory=list)
    method_choice: str = ""
    budget: str = ""
    unknown_note: str = ""
    rows: list[CardRow] = Field(default_factory=list)
    bootstrap: str = f"{N_BOOT} bootstrap resamples of the test clips (known and unknown resampled separately), seed 0"


def bootstrap(confidence: np.ndarray, prediction: np.ndarray, labels: np.ndarray, threshold: float, *,
              num_classes: int, n_boot: int = N_BOOT, seed: int = 0) -> dict[str, Estimate]:
    """Point values and percentile 95 % intervals of the card's metrics.

    Args:
        confidence: (N,) higher = more likely known.
        prediction: (N,) known-class indices.
        labels: (N,) known-class indices, ``< 0`` for unknown clips (both must occur).
        threshold: the deployable threshold (accept = ``confidence >= threshold``).
        num_classes: K.
        n_boot: resamples; the known and the unknown clips are resampled separately (stratified),
            so every resample has both.
        seed: the resampling seed (equal seeds give equal intervals).

    Returns:
        ``{"auroc", "oscr", "closed_acc", "fpr_at_threshold"}`` -> :class:`Estimate`.

    Raises:
        ValueError: no known or no unknown clip.
    """
    conf, pred, lab = (np.asarray(a) for a in (confidence, prediction, labels))

    def values(c: np.ndarray, p: np.ndarray, y: np.ndarray) -> list[float]:
        return [auroc(c, y), oscr(c, p, y, num_classes=num_classes),
                closed_set_accuracy(p[y >= 0], y[y >= 0], num_classes=num_classes),
                operating_point(c, p, y, threshold, num_classes=num_classes)["fpr"]]

    point = values(conf, pred, lab)
    known, unknown = np.flatnonzero(lab >= 0), np.flatnonzero(lab < 0)
    rng = np.random.default_rng(seed)
    draws = np.empty((n_boot, len(point)))
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(known, known.size), rng.choice(unknown, unknown.size)])
        draws[b] = values(conf[idx], pred[idx], lab[idx])
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    return {k: Estimate(value=v, low=float(lo), high=float(hi))
            for k, v, lo, hi in zip(METRICS, point, low, high, strict=True)}


def card_row(name: str, confidence: Any, prediction: Any, labels: Any, threshold: float, *, num_classes: int,
             trained_on: str, tested_on: str, unknown_classes: Sequence[str] = (), model: str = "this model",
             n_boot: int = N_BOOT, seed: int = 0) -> CardRow:
    """One test set's row: the card's metrics with bootstrap intervals (:func:`bootstrap`).

    ``shift`` is ``"in-corpus"`` when ``tested_on`` is one of the corpora of ``trained_on``
    (split on ``" + "``). Shapes and errors as :func:`bootstrap`.
    """
    lab = np.asarray(labels)
    est = bootstrap(np.asarray(confidence), np.asarray(prediction), lab, threshold, num_classes=num_classes,
                    n_boot=n_boot, seed=seed)
    tpr = operating_point(confidence, prediction, lab, threshold, num_classes=num_classes)["tpr"]
    shift: Literal["in-corpus", "cross-corpus"] = (
        "in-corpus" if tested_on in trained_on.split(" + ") else "cross-corpus")
    return CardRow(name=name, trained_on=trained_on, tested_on=tested_on, shift=shift, model=model,
                   n_known=int((lab >= 0).sum()), n_unknown=int((lab < 0).sum()),
                   unknown_classes=list(unknown_classes), tpr_at_threshold=tpr, auroc=est["auroc"], oscr=est["oscr"],
                   closed_acc=est["closed_acc"], fpr_at_threshold=est["fpr_at_threshold"])


def read_card_notes(run_dir: str | Path) -> CardNotes:
    """``card.json`` of a run folder (empty notes when there is none).

    Raises:
        CheckpointError: the file exists but is not a valid card file (naming it).
    """
    path = Path(run_dir) / CARD_ROWS_FILE
    return CardNotes.from_dict(read_json(path, what="model card data")) if path.is_file() else CardNotes()


def _datasets(info: RunInfo, notes: CardNotes) -> list[str]:
    if notes.datasets:
        return list(notes.datasets)
    name = info.data.source.partition("=")[0]
    return [name] if name in DATASETS else []


def _license(names: Sequence[str]) -> str:
    """The card's licence id: the one named licence of the training data (EmoDB's terms name none),
    ``"other"`` when they name several or none."""
    named = sorted({DATASETS.get(n).license for n in names} - {"other"})
    return named[0] if len(named) == 1 else "other"


def _metadata(info: RunInfo, notes: CardNotes, names: Sequence[str]) -> dict[str, Any]:
    audio = "audio" in info.modalities
    task = "audio-classification" if audio else "text-classification"
    meta: dict[str, Any] = {
        "license": _license(names),
        "library_name": "openmer",
        "pipeline_tag": task,
        "tags": ["openmer", "emotion-recognition", "open-set-recognition", info.method,
                 *(["speech-emotion-recognition"] if audio else [])],
        "datasets": list(names),
        "metrics": [hf for _, hf in METRICS.values()],
    }
    if notes.rows:
        meta["model-index"] = [{"name": notes.title or f"openmer {info.method}", "results": [
            {"task": {"type": task, "name": "open-set emotion recognition"},
             "dataset": {"name": r.name, "type": r.tested_on, "split": "test"},
             "metrics": [{"type": hf, "name": label if r.model == "this model" else f"{label} ({r.model})",
                          "value": round(getattr(r, key).value, 4)}
                         for key, (label, hf) in METRICS.items()]}
            for r in notes.rows]}]
    return meta


def _table(rows: Sequence[CardRow]) -> list[str]:
    out = [("| test set | model | known / unknown clips | unknown classes | AUROC (%) | OSCR (%) | "
            "closed-set acc. (%) | FPR at threshold (%) | TPR at threshold (%) |"),
           "|---|---|---|---|---|---|---|---|---|"]
    out += [f"| {r.name} | {r.model} (trained on {r.trained_on}) | {r.n_known} / {r.n_unknown} | "
            f"{', '.join(r.unknown_classes) or '—'} | {r.auroc.text()} | {r.oscr.text()} | {r.closed_acc.text()} | "
            f"{r.fpr_at_threshold.text()} | {100 * r.tpr_at_threshold:.1f} |" for r in rows]
    return out


def _encoders(info: RunInfo) -> list[str]:
    return [f"- {m}: `{spec.get('name_or_path')}` ({spec.get('kind')}"
            + (f", {', '.join(f'{k}={v}' for k, v in spec['options'].items())}" if spec.get("options") else "") + ")"
            for m, spec in info.profile.items() if isinstance(spec, dict) and m in info.modalities]


def render_model_card(info: RunInfo, notes: CardNotes) -> str:
    """The card's text: YAML metadata between ``---`` lines, then the sections (module docstring)."""
    names = _datasets(info, notes)
    known = ", ".join(info.known_classes)
    th, tc = info.threshold, info.train_config
    title = notes.title or f"openmer {info.method}: {known} or unknown"
    lines = ["---", yaml.safe_dump(_metadata(info, notes, names), sort_keys=False, allow_unicode=True).rstrip(),
             "---", "", f"# {title}", ""]
    lines += ["## What it knows", "",
              f"Known classes: **{known}**. Any other emotion is **unknown**: a clip is named by its known class only "
              "when the model's confidence reaches the deployable threshold below; otherwise the answer is "
              "`unknown`. All unknown emotions share this one bucket (`openmer discover` clusters them)."
              + (f" {notes.unknown_note}" if notes.unknown_note else ""), ""]
    lines += ["## Training data", ""]
    if names:
        lines += ["| dataset | licence | terms | citation |", "|---|---|---|---|"]
        for n in names:
            spec = DATASETS.get(n)
            lines.append(f"| {n} | {spec.license} | {spec.license_note or '—'} | {spec.citation or '—'} |")
        lines.append("")
    lines += [f"Data: `{info.data.source}` ({info.data.split_rule}); {info.n_train} training and {info.n_val} "
              f"validation clips of the known classes"
              + (f"; left out as unknown: {', '.join(f'{k} {v}' for k, v in info.data.dropped_labels.items())}"
                 if info.data.dropped_labels else "") + ".", ""]
    lines += ["## Method, encoders, budget", "",
              f"- method: `{info.method}` (docs/methods.md){f'. {notes.method_choice}' if notes.method_choice else ''}",
              (f"- preset: `{info.preset or 'none recorded'}`; {tc.get('epochs')} epochs {tc.get('optimizer')} lr "
              f"{tc.get('lr')}, batch {tc.get('batch_size')}, seed {tc.get('seed')}; selected epoch {info.best_epoch} "
              f"by {info.select_metric} on the validation clips"),
              f"- modalities: {', '.join(info.modalities)}; frozen encoders:", *_encoders(info)]
    if notes.budget:
        lines.append(f"- budget: {notes.budget}")
    lines.append("")
    lines += ["## Results on held-out speakers", ""]
    in_rows = [r for r in notes.rows if r.shift == "in-corpus"]
    cross = [r for r in notes.rows if r.shift == "cross-corpus"]
    if in_rows:
        lines += [("Speakers never seen in training or validation. Percent, with the 95 % confidence interval "
                  f"in brackets ({notes.bootstrap})."), "", *_table(in_rows), ""]
    else:
        lines += [("Not measured yet: `openmer evaluate RUN --data DATA` scores the held-out speakers and adds "
                  "their row here."), ""]
    lines += ["## Cross-corpus results", ""]
    lines += ([("Trained on one corpus, tested on the other corpus's held-out speakers (what a change of "
               "language, speakers and recording costs)."), "", *_table(cross), ""] if cross else
              ["None measured for this model.", ""])
    lines += ["## Threshold", "",
              (f"Deployable threshold **{th.value:.4f}** on the confidence: it accepts {100 * th.acceptance:.0f} % of "
              f"the known-class {th.source} clips ({th.rule or 'HCEP Sec. 4.4.6'}); never chosen on test clips."), ""]
    lines += ["## Intended use", "",
              ("Decision support in research and prototyping, with a person reviewing every output: a hint about the "
              "emotion expressed in a recording, or `unknown`. Never a diagnosis, never a judgement about a person, "
              "never an automated decision about anyone."), ""]
    lines += ["## Limitations", "",
              ("- Trained on academic, acted emotions (actors reading fixed sentences); spontaneous speech, other "
              "languages, accents, ages and recording conditions will score lower (see the cross-corpus rows)."),
              "- Aligned, clean input is assumed: one speaker, little noise, the clip cut around the utterance.",
              ("- Every emotion outside the known classes lands in one `unknown` bucket unless `openmer discover` is "
              "used; an unknown emotion close to a known one can still be accepted as it (FPR above)."),
              "- The intervals cover resampling of these test clips only, not other speakers or corpora.", ""]
    lines += ["## Use", "", "```bash", "openmer predict THIS_FOLDER_OR_HUB_ID clip.wav", "```", "",
              f"Written by openmer {info.openmer_version} from `run.json` and `{CARD_ROWS_FILE}`.", ""]
    return "\n".join(lines)


def write_model_card(run_dir: str | Path, *, rows: Sequence[CardRow] | None = None,
                     notes: CardNotes | None = None, **fields: Any) -> Path:
    """Write ``README.md`` and ``card.json`` of a run folder.

    Args:
        run_dir: a finished run folder (``run.json``).
        rows: rows to add; a row replaces the stored row of the same ``name`` and ``model``.
        notes: the notes to start from (default: the folder's ``card.json``).
        **fields: :class:`CardNotes` fields to set (``datasets``, ``method_choice``, ``budget``, ...).

    Returns:
        The card's path.

    Raises:
        CheckpointError: ``run.json`` or ``card.json`` cannot be read (naming the file).
        OutputError: the folder cannot be written.
    """
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    base = notes if notes is not None else read_card_notes(run_dir)
    kept = [r for r in base.rows if all((r.name, r.model) != (n.name, n.model) for n in rows or [])]
    notes = base.model_copy(update={**fields, "rows": [*kept, *(rows or [])]})
    atomic_write_json(run_dir / CARD_ROWS_FILE, json.loads(json.dumps(notes.to_dict())))
    return atomic_write_text(run_dir / CARD_FILE, render_model_card(info, notes))
