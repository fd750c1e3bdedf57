"""`openmer figures` and openmer.reporting.commands on a synthetic benchmark folder written by save_runs."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from typer.testing import CliRunner

import openmer.cli.figures  # noqa: F401  (registers the command on the app)
from openmer.cli.app import app
from openmer.errors import ConfigError, DataError
from openmer.methods.threshold import choose_threshold
from openmer.reporting.commands import FIGURE_KINDS, open_set_threshold, paper_figures
from openmer.reporting.scores import RunScores, save_runs

EMOTIONS = ["anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness"]
runner = CliRunner()


def _run(method: str, n_known: int, split: int, *, features: bool, threshold: float | None, n: int = 50,
         val: bool = False) -> RunScores:
    """Synthetic test scores; ``val``: with validation confidences and the threshold chosen on them."""
    rng = np.random.default_rng(100 * n_known + 10 * split + sum(map(ord, method)))
    known, unknown = EMOTIONS[:n_known], EMOTIONS[n_known:]
    names = rng.choice(EMOTIONS, size=n)
    labels = np.array([known.index(c) if c in known else -1 for c in names])
    conf = np.clip(np.where(labels >= 0, rng.normal(0.75, 0.12, n), rng.normal(0.5, 0.12, n)), 0, 1)
    pred = np.where((labels >= 0) & (rng.random(n) < 0.7), labels, rng.integers(0, n_known, n))
    feats = None
    if features:
        centers = rng.normal(size=(len(EMOTIONS), 6)) * 3
        feats = centers[[EMOTIONS.index(c) for c in names]] + rng.normal(size=(n, 6))
    u = len(EMOTIONS) - n_known
    val_conf = np.clip(rng.normal(0.8, 0.1, 30), 0, 1) if val else None
    if val:
        threshold = choose_threshold(val_conf)
    return RunScores(method=method, modalities=("audio", "text"), level=f"O({n_known}:{u})",
                     openness=1 - np.sqrt(n_known / len(EMOTIONS)), split=split, known_classes=known,
                     unknown_classes=unknown, confidence=conf, prediction=pred, labels=labels,
                     class_names=list(names), features=feats, threshold=threshold,
                     threshold_confidence=val_conf, threshold_source="validation" if val else None)


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench_emodb")
    runs = [_run("hcep", k, s, features=True, threshold=None, val=True) for k in (5, 4) for s in (0, 1)]
    # as an older benchmark folder: a threshold, but not the confidences it was chosen from
    runs += [_run("arpl", k, 0, features=False, threshold=0.6) for k in (5, 4)]
    runs += [_run("msp", 5, 0, features=False, threshold=None)]  # no threshold at all
    save_runs(out, runs)
    return out


def _png(path: Path) -> np.ndarray:
    assert path.is_file() and path.stat().st_size > 1000
    image = mpimg.imread(path)
    assert image.std() > 0
    return image


def test_cli_writes_every_kind(bench_dir):
    res = runner.invoke(app, ["figures", str(bench_dir)])
    assert res.exit_code == 0, res.output
    out = bench_dir / "figures" / "paper"
    names = sorted(p.name for p in out.glob("*.png"))
    # Fig. 7 per method; Fig. 9 ROC + OSCR per level with all methods
    assert {"fig7_distributions_hcep_audio-text.png", "fig7_distributions_arpl_audio-text.png",
            "fig9_roc_O5-2.png", "fig9_oscr_O5-2.png", "fig9_roc_O4-3.png", "fig9_oscr_O4-3.png"} <= set(names)
    # per (method, level): first split only
    assert "fig10_threshold_hcep_audio-text_O5-2_split0.png" in names
    assert "fig10_threshold_hcep_audio-text_O5-2_split1.png" not in names
    # no threshold sweep without training/validation confidences, no open-set confusion without a threshold
    assert not any(n.startswith(("fig10_threshold_arpl", "fig10_threshold_msp", "fig11_confusion_open_msp"))
                   for n in names)
    assert "threshold sweep (Fig. 10) skipped for arpl" in res.output
    assert "open-set confusion (Fig. 11) skipped for msp" in res.output
    assert "fig11_confusion_open_arpl_audio-text_O4-3_split0.png" in names
    assert "fig11_confusion_closed_hcep_audio-text_O4-3_split0.png" in names
    assert "fig6-8_tsne_hcep_audio-text_O4-3_split0.png" in names
    assert not any(n.startswith("fig6-8_tsne_arpl") for n in names)  # ARPL runs have no features
    assert "t-SNE skipped for arpl" in res.output
    # Fig. 7 x 3 methods, Fig. 9 x 2 levels x 2; HCEP (Fig. 10 + 2 x Fig. 11) x 2 levels, ARPL 2 x Fig. 11
    # x 2 levels, MSP closed-set Fig. 11; t-SNE x 2 (HCEP only)
    assert len(names) == 3 + 4 + 3 * 2 + 2 * 2 + 1 + 2
    for name in names:
        _png(out / name)


def test_filters_and_titles(bench_dir, tmp_path):
    rep = paper_figures(bench_dir, kinds=["confusion", "threshold"], method="hcep", level="O(5:2)", split=1,
                        out=tmp_path)
    assert [p.name for p in rep.written] == [
        "fig10_threshold_hcep_audio-text_O5-2_split1.png",
        "fig11_confusion_closed_hcep_audio-text_O5-2_split1.png",
        "fig11_confusion_open_hcep_audio-text_O5-2_split1.png",
    ]
    assert rep.notes == []


def test_titles_name_the_run_and_the_threshold_source(bench_dir, tmp_path, monkeypatch):
    from openmer.reporting import figures as F

    titles: list[str] = []
    real_save = F._save

    def spy(fig, path):
        titles.append(" | ".join([t.get_text() for ax in fig.axes for t in [ax.title]] + [fig.get_suptitle()]))
        return real_save(fig, path)

    monkeypatch.setattr(F, "_save", spy)
    paper_figures(bench_dir, kinds="confusion", level="O(4:3)", out=tmp_path)
    folder = bench_dir.name
    assert all(folder in t and "O(4:3)" in t for t in titles)
    open_hcep = next(t for t in titles if "hcep" in t and "open-set" in t)
    assert "deployed threshold (from validation knowns)" in open_hcep
    assert not any("TEST" in t or "test knowns" in t for t in titles)
    open_arpl = next(t for t in titles if "arpl" in t and "open-set" in t)
    assert "deployed threshold" in open_arpl and "threshold 0.6" in open_arpl
    titles.clear()
    paper_figures(bench_dir, kinds="threshold", method="hcep", out=tmp_path)
    assert titles and all("thresholds from 30 known validation confidences" in t for t in titles)


def test_open_set_threshold_never_reads_the_test_set(bench_dir):
    run = _run("hcep", 5, 0, features=False, threshold=None, val=True)
    assert open_set_threshold(run) == (run.threshold, "the run's deployed threshold (from validation knowns)")
    thr, text = open_set_threshold(run, 0.62)  # the paper's acceptance range, on the validation knowns
    assert thr == choose_threshold(run.threshold_confidence, 0.62) and "0.62 known-acceptance of the validation" in text
    assert np.mean(run.threshold_confidence >= thr) >= 0.62
    old = _run("arpl", 5, 0, features=False, threshold=None)
    with pytest.raises(ValueError, match="no deployable threshold"):
        open_set_threshold(old)
    with pytest.raises(ValueError, match="no training/validation confidences"):
        open_set_threshold(old, 0.9)


def test_errors_are_readable(bench_dir, tmp_path):
    with pytest.raises(ConfigError, match="O\\(4:3\\)"):
        paper_figures(bench_dir, level="O(9:9)", out=tmp_path)
    with pytest.raises(ConfigError, match="unknown figure kind"):
        paper_figures(bench_dir, kinds=["pie"], out=tmp_path)
    with pytest.raises(DataError, match="no saved scores"):
        paper_figures(tmp_path / "empty")
    res = runner.invoke(app, ["figures", str(bench_dir), "--method", "nope", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "no saved run has method 'nope'" in res.output and "Traceback" not in res.output
    assert set(FIGURE_KINDS) == {"distributions", "curves", "threshold", "confusion", "tsne"}


def test_cross_dataset_runs_get_one_figure_per_test_set(tmp_path):
    base = _run("hcep", 5, 0, features=False, threshold=0.5, val=True)
    runs = [RunScores(**{**base.__dict__, "train_set": "emodb", "test_set": t}) for t in ("emodb", "ravdess-speech")]
    save_runs(tmp_path, runs)
    report = paper_figures(tmp_path, kinds="threshold")
    assert sorted(p.name for p in report.written) == ["fig10_threshold_hcep_audio-text_O5-2_emodb-to-emodb_split0.png",
                                                      "fig10_threshold_hcep_audio-text_O5-2_emodb-to-ravdess-speech_split0.png"]
