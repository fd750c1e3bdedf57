"""The cluster-count rule, the vocabulary and naming (fast, no run folder)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openmer.backbones.factory import ProfileConfig
from openmer.discovery import cluster_rejected, default_vocabulary, name_clusters, read_word_list
from openmer.discovery.naming import RidgeAlignment, cluster_queries, encode_sentences
from openmer.discovery.words import shared_word, vocabulary_of
from openmer.errors import ConfigError, DataError, NotSupportedError
from openmer.methods.hcep import HCEP, HCEPConfig
from tests.helpers.encoders import ToyText, toy_encoders


def blobs(k: int, n: int = 25, d: int = 16, seed: int = 0, spread: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 3
    y = np.repeat(np.arange(k), n)
    return centres[y] + rng.normal(size=(k * n, d)) * spread, y


@pytest.mark.parametrize("k", [2, 3, 5])
def test_cluster_count_rule_recovers_well_separated_blobs(k):
    x, y = blobs(k)
    c = cluster_rejected(x, min_size=3, k_max=8)
    assert c.k == k and c.n_clusters == k
    assert max(c.silhouette, key=c.silhouette.get) == k
    # each blob is one cluster
    for b in range(k):
        assert len(set(c.labels[y == b])) == 1
    assert (c.labels >= 0).all()


def test_a_cluster_below_the_minimum_size_stays_unknown():
    x, _ = blobs(3, n=20)
    far = np.full((2, x.shape[1]), 40.0) + np.random.default_rng(1).normal(size=(2, x.shape[1])) * 0.1
    c = cluster_rejected(np.concatenate([x, far]), min_size=5)
    assert (c.labels[-2:] == -1).all()
    assert (c.labels[:-2] >= 0).all() and c.n_clusters == 3
    # too few clips for any cluster: all unknown
    assert (cluster_rejected(x[:2], min_size=3).labels == -1).all()


def test_cluster_rule_refuses_bad_options():
    with pytest.raises(ConfigError):
        cluster_rejected(np.zeros((10, 3)), min_size=1)
    with pytest.raises(ConfigError):
        cluster_rejected(np.full((10, 3), np.nan))


def test_naming_ranks_the_right_word_first_with_a_toy_text_encoder():
    torch.manual_seed(0)
    text = ToyText(width=16, dim=12)
    vocab = vocabulary_of(["grief", "relief", "pride", "awe", "boredom"])
    words = encode_sentences(text, vocab.sentences())
    rng = np.random.default_rng(0)
    # two clusters whose members are noisy copies of the sentence features of "pride" and "boredom"
    members = np.concatenate([words[2] + rng.normal(size=(6, 12)) * 0.01, words[4] + rng.normal(size=(6, 12)) * 0.01])
    labels = np.repeat([0, 1], 6)
    names = name_clusters(cluster_queries(members, labels, 2), words, vocab, top=3)
    assert names[0][0][0] == "pride" and names[1][0][0] == "boredom"
    assert len(names[0]) == 3 and names[0][0][1] > names[0][1][1]


def test_ridge_alignment_maps_features_onto_their_class_sentences():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(3, 6))
    y = np.repeat(np.arange(3), 20)
    x = t[y] @ rng.normal(size=(6, 10)) + rng.normal(size=(60, 10)) * 0.01
    align = RidgeAlignment(x, y, t, alpha=1e-3)
    vocab = vocabulary_of(["a", "b", "c"])
    names = name_clusters(cluster_queries(align(x), y, 3), t, vocab, top=1)
    assert [n[0][0] for n in names] == ["a", "b", "c"]
    with pytest.raises(ConfigError):
        RidgeAlignment(x, np.zeros(60, dtype=int), t)


def test_vocabulary_sources_shared_names_and_user_lists(tmp_path):
    v = default_vocabulary()
    assert {"grief", "remorse", "neutral", "anticipation", "boredom", "calm", "happiness"} <= set(v.words)
    assert v.sources["joy"] == ("goemotions", "plutchik")
    assert shared_word("joy") == "happiness" and shared_word("angry") == "anger" and shared_word("grief") == "grief"
    rest = v.without(["happy", "anger"])
    assert "joy" not in rest.words and "happiness" not in rest.words and "anger" not in rest.words
    assert v.sentences()[0] == "This video is admiration."
    f = tmp_path / "words.txt"
    f.write_text("# mine\nGrief\n\nawe  # wonder\ngrief\n", encoding="utf-8")
    assert read_word_list(f).words == ("grief", "awe")
    f.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(DataError, match="no word"):
        read_word_list(f)
    with pytest.raises(DataError, match="not found"):
        read_word_list(tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match="template"):
        vocabulary_of(["a"], template="no slot")


def test_hcep_text_query_is_the_emotion_streams_query():
    model = HCEP(HCEPConfig(profile=ProfileConfig(name="toy"), modalities=("text", "audio")), ["anger", "joy"],
                 toy_encoders()).eval()
    g = torch.Generator().manual_seed(0)
    batch = {"text": ["furious rage", "tears"], "audio": torch.randn(2, 300, generator=g),
             "audio_lengths": torch.full((2,), 300), "label": torch.tensor([0, 1])}
    feats = model.features(batch)
    q = model.text_query(feats)
    blocks, present = model.sample_features(batch)
    assert q.shape == (2, model.encoders["text"].embed_dim)
    assert torch.allclose(q, model._emo_query(blocks, present), atol=1e-6)
    assert model.class_parameters() == ("cuep.positive.audio", "cuep.negative.audio")
    other = HCEP(HCEPConfig(profile=ProfileConfig(name="toy"), modalities=("text", "audio"),
                            dpol_features="multimodal_only"), ["anger", "joy"], toy_encoders())
    with pytest.raises(NotSupportedError):
        other.text_query(feats)


def test_hcep_enrolment_grows_and_tunes_only_the_new_cuep_rows():
    from openmer.discovery.enrol import enrol_method

    torch.manual_seed(0)
    model = HCEP(HCEPConfig(profile=ProfileConfig(name="toy"), modalities=("text", "audio")), ["anger", "joy"],
                 toy_encoders())
    model.mark_fitted()
    g = torch.Generator().manual_seed(0)

    def batch(label: int, n: int = 4) -> dict:
        return {"text": ["words"] * n, "audio": torch.randn(n, 300, generator=g) * 0.1 + label,
                "audio_lengths": torch.full((n,), 300), "label": torch.full((n,), label)}

    train = [{k: torch.cat([a[k], b[k]]) if k != "text" else a[k] + b[k] for k in a} for a, b in [(batch(0), batch(1))]]
    old = {k: v.clone() for k, v in model.trainable_state_dict().items()}
    examples = [batch(2)]
    untuned, _, _, _ = enrol_method(model, "sadness", train, examples, steps=0)
    new, params, losses, conf = enrol_method(model, "sadness", train, examples, steps=15, lr=0.05)
    assert new.known_classes == ["anger", "joy", "sadness"] and set(params) == set(model.class_parameters())
    state = new.trainable_state_dict()
    for p in params:
        assert state[p].shape[0] == 3 and torch.equal(state[p][:2], old[p])  # old rows untouched
        assert not torch.allclose(state[p][2], old[p].mean(0))  # the new row was tuned
    assert all(torch.equal(state[k], v) for k, v in old.items() if k not in params)
    assert len(losses) == 15 and conf.shape == (12,)
    with torch.no_grad():  # the examples' loss falls from the untuned start (new rows = mean of the old)
        assert float(new.train().loss(examples[0])) < float(untuned.train().loss(examples[0]))
    assert torch.equal(model.trainable_state_dict()["cuep.negative.audio"], old["cuep.negative.audio"])
