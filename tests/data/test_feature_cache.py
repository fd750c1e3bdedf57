"""The feature cache under faults (issue 24, item 12): a damaged cache file is a warning and is
rebuilt; a cache folder that cannot be written is a warning before any encoding, and the work goes on."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from tests.helpers.encoders import ToyText

from openmer.data.clips import ClipDataset
from openmer.data.feature_cache import encode_features
from openmer.data.manifest import Manifest, Sample
from openmer.errors import OpenmerWarning

N = 6


def _clips(tmp_path):
    man = Manifest([Sample(id=str(i), label="a", text=f"words number {i}") for i in range(N)], root=tmp_path)
    return ClipDataset(man, np.zeros(N, dtype=np.int64), ["text"])


def _encode(clips, enc, cache):
    return encode_features(clips, {"text": enc}, cache_dir=cache)[0]["text"]


@pytest.fixture
def cached(tmp_path):
    """(clips, encoder, cache folder, the cache file, the features) after a first, cached encoding."""
    clips, enc = _clips(tmp_path), ToyText()
    cache = tmp_path / "cache"
    feats = _encode(clips, enc, cache)
    (path,) = cache.glob("text-*.npz")
    return clips, enc, cache, path, feats


def _rebuilt(path, feats):
    with np.load(path, allow_pickle=False) as z:
        assert len(z.files) == N
        assert sorted(np.round(z[k], 5).tolist() for k in z.files) == sorted(np.round(feats, 5).tolist())


@pytest.mark.parametrize(("damage", "match"), [
    ("truncated", r"feature cache cannot be read \(BadZipFile"),
    ("not an npz", r"feature cache cannot be read \(ValueError"),
    ("empty", r"feature cache cannot be read \((EOFError|ValueError)"),
])
def test_an_unreadable_cache_file_is_a_warning_and_is_rebuilt(cached, damage, match):
    clips, enc, cache, path, feats = cached
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "not an npz": b"garbage" * 10, "empty": b""}[damage])
    with pytest.warns(OpenmerWarning, match=rf"{path.name}: {match}.*encoded again and the file rewritten"):
        again = _encode(clips, enc, cache)
    np.testing.assert_allclose(again, feats, rtol=1e-5)
    _rebuilt(path, feats)


def test_unusable_entries_are_a_warning_and_are_rebuilt(cached):
    """An object array (was ValueError: Object arrays cannot be loaded...), a vector of another width, a NaN."""
    clips, enc, cache, path, feats = cached
    with np.load(path) as z:
        store = {k: z[k] for k in z.files}
    keys = sorted(store)
    store[keys[0]] = np.array([{"not": "a vector"}], dtype=object)
    store[keys[1]] = np.zeros(3, np.float32)
    store[keys[2]] = np.full(feats.shape[1], np.nan, np.float32)
    with path.open("wb") as fh:
        np.savez(fh, **store)
    with pytest.warns(OpenmerWarning, match=rf"{path.name}: 3 of {N} cached feature vector\(s\) cannot be used"):
        again = _encode(clips, enc, cache)
    np.testing.assert_allclose(again, feats, rtol=1e-5)
    _rebuilt(path, feats)


@pytest.mark.parametrize("fault", ["a file in the way", "read-only folder"])
def test_a_cache_folder_that_cannot_be_written_is_a_warning_before_any_encoding(tmp_path, monkeypatch, fault):
    from openmer.data import feature_cache
    from openmer.errors import OutputError

    clips, enc = _clips(tmp_path), ToyText()
    cache = tmp_path / "cache"
    if fault == "a file in the way":
        cache.write_text("not a folder")
    else:
        def read_only(folder):
            raise OutputError(folder, "Read-only file system")

        monkeypatch.setattr(feature_cache, "check_writable", read_only)
    seen_at_encoding = []
    real = enc.encode_batch
    monkeypatch.setattr(enc, "encode_batch", lambda *a, **k: seen_at_encoding.append(len(caught)) or real(*a, **k))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        feats = _encode(clips, enc, cache)
    messages = [str(w.message) for w in caught if issubclass(w.category, OpenmerWarning)]
    assert len(messages) == 1 and "the feature cache cannot be written there" in messages[0], messages
    assert seen_at_encoding and seen_at_encoding[0] == 1  # the warning came before the first encoding
    assert feats.shape == (N, enc.embed_dim)
    assert not list(tmp_path.glob("cache/*.npz"))
