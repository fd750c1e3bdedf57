"""The media benchmark: HCEP and the baselines see the same clips, presence masks and threshold rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openmer.benchmarks.media import run_media_benchmark
from openmer.methods.threshold import choose_threshold
from openmer.training import trial
from tests.helpers.tiny_media import make_tiny_media, tiny_config

# one clip per (class, speaker) lacks its transcript, two others lack audio
NO_TEXT = [f"{c}_{g}_0" for c in ("anger", "joy", "sadness", "fear") for g in range(5)]
NO_AUDIO = ["anger_0_1", "joy_3_1"]


@pytest.fixture
def partial(tmp_path, monkeypatch):
    """The tiny dataset with missing transcripts/audio, and spies on what each method is trained on."""
    manifest, protocol = make_tiny_media(tmp_path, monkeypatch, without_text=NO_TEXT, without_audio=NO_AUDIO)
    seen = {"baseline": [], "hcep": []}

    def spy(real):
        def fit(method, train, val, cfg, **kw):  # every trial trains through run_trial's fit
            seen["baseline" if method.consumes == "features" else "hcep"].append((method, train, val))
            return real(method, train, val, cfg, **kw)
        return fit

    monkeypatch.setattr(trial, "fit", spy(trial.fit))
    cfg = tiny_config().model_copy(update={"levels": ("O(3:1)",), "methods": ("hcep", "arpl")})
    result = run_media_benchmark(cfg, manifest, protocol)
    return manifest, result, seen


def test_baselines_get_the_training_mean_of_present_rows_not_zeros(partial):
    _manifest, _result, seen = partial
    (method, train, _), = seen["baseline"]
    (_, hcep_train, _), = seen["hcep"]  # the same training clips, in the same order (see the next test)
    text_dim = 6  # ToyText.embed_dim; blocks in the config's order: text, then audio
    present = np.array([s.id not in NO_TEXT for s in hcep_train.manifest])
    assert 0 < present.sum() < len(present)
    x_text = train.x[:, :text_dim].numpy()
    mean = x_text[present].mean(0)
    assert np.abs(mean).max() > 1e-3
    np.testing.assert_allclose(x_text[~present], np.broadcast_to(mean, x_text[~present].shape), rtol=1e-5)
    # the head's statistics come from the present rows only: the filled block standardises to zero
    np.testing.assert_allclose(method.embedding.mean[:text_dim].numpy(), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(method.embedding.std[:text_dim].numpy(), x_text[present].std(0), rtol=1e-4)


def _cat(batches, key):
    return torch.cat([torch.as_tensor(b[key]) for b in batches])


def test_hcep_and_the_baselines_see_the_same_clips_with_the_same_presence(partial):
    _manifest, result, seen = partial
    (_, base_train, base_val), = seen["baseline"]
    (_, hcep_train, hcep_val), = seen["hcep"]
    for base, clips in ((base_train.batches(), hcep_train.batches(64)), (base_val, hcep_val)):
        assert torch.equal(_cat(clips, "label"), _cat(base, "label"))
        for column, m in ((0, "text"), (6, "audio")):  # first column of each block (text is 6-d)
            hcep_mask = _cat(clips, f"{m}_present")
            assert torch.equal(hcep_mask, _cat(base, "features_present")[:, column]), m
    assert not _cat(hcep_train.batches(64), "text_present").all()
    assert not _cat(hcep_train.batches(64), "audio_present").all()
    # the test clips are the same too, in the same order
    hcep_run, arpl_run = (next(r for r in result.runs if r.method == m) for m in ("hcep", "arpl"))
    assert hcep_run.class_names == arpl_run.class_names
    np.testing.assert_array_equal(hcep_run.labels, arpl_run.labels)


def test_every_trial_records_a_threshold_chosen_on_known_validation_data(partial):
    _manifest, result, seen = partial
    own = [r for r in result.records if "posthoc_of" not in r]  # post-hoc rows save no scores of their own
    for rec, run in zip(own, result.runs, strict=True):
        assert run.threshold_source == "val"
        assert rec["threshold"] == run.threshold == choose_threshold(run.threshold_confidence)
    for kind in ("baseline", "hcep"):
        (_method, _, val), = seen[kind]
        run = next(r for r in result.runs if (r.method == "hcep") == (kind == "hcep"))
        assert len(run.threshold_confidence) == len(_cat(val, "label"))  # the validation clips, not the test clips
        assert len(run.threshold_confidence) != len(run.confidence)


def test_matched_budget_trains_every_method_like_hcep_on_the_same_clips(tmp_path, monkeypatch):
    from openmer.benchmarks.media import with_matched_budget
    from openmer.reporting.results import write_results

    manifest, protocol = make_tiny_media(tmp_path, monkeypatch)
    seen = {"baseline": [], "hcep": []}

    def spy(real):
        def fit(method, train, val, cfg, **kw):  # every trial trains through run_trial's fit
            seen["baseline" if method.consumes == "features" else "hcep"].append((train, cfg))
            return real(method, train, val, cfg, **kw)
        return fit

    monkeypatch.setattr(trial, "fit", spy(trial.fit))
    base = tiny_config().model_copy(update={"levels": ("O(3:1)",), "methods": ("hcep", "arpl"), "posthoc": ()})
    base = base.model_copy(update={"max_train_per_trial": 20, "hcep_train": base.hcep_train.model_copy(
        update={"epochs": 3, "batch_size": 8, "lr_scales": {"cuep": 3.0}})})
    assert base.baseline_train.epochs != 3  # the preset gives the heads another schedule
    result = run_media_benchmark(with_matched_budget(base), manifest, protocol)
    (b_train, b_cfg), = seen["baseline"]
    (h_train, h_cfg), = seen["hcep"]
    fields = ("optimizer", "lr", "epochs", "batch_size", "step_size", "gamma", "select_metric", "eval_every", "seed")
    assert {f: getattr(b_cfg, f) for f in fields} == {f: getattr(h_cfg, f) for f in fields}
    assert b_cfg.lr_scales == {} and h_cfg.lr_scales == {"cuep": 3.0}
    assert len(h_train) == len(b_train) <= 20  # the same capped clips, same labels in the same order
    np.testing.assert_array_equal(b_train.y.numpy(), h_train.labels)
    budgets = {r["method"]: r["budget"] for r in result.records}
    assert budgets["arpl"].startswith("3 ep") and "<= 20 clips" in budgets["arpl"] and "cuep x3" in budgets["hcep"]
    md = write_results(tmp_path / "out", result.records, result.meta)["markdown"].read_text()
    assert "Training budget" in md and budgets["arpl"] in md


def test_methods_that_need_video_are_left_out_of_a_speech_benchmark_with_their_reason(tmp_path, monkeypatch):
    """Every registered method is a default; HESP (clips) and Open-VCLIP (features) read video,
    which the tiny speech data lacks: they are left out and say why, the others run."""
    from openmer.methods import list_methods

    manifest, protocol = make_tiny_media(tmp_path, monkeypatch)
    cfg = tiny_config()
    assert cfg.methods == list_methods() and {"hesp", "openvclip"} <= set(cfg.methods)
    cfg = cfg.model_copy(update={"levels": ("O(3:1)",), "methods": ("hesp", "openvclip", "msp"), "posthoc": ()})
    result = run_media_benchmark(cfg, manifest, protocol)
    assert [r["method"] for r in result.records] == ["msp"]
    assert "reads video" in result.meta["left_out"]["hesp text+audio"]
    assert "'video' feature block" in result.meta["left_out"]["openvclip text+audio"]
