"""Embedding extraction: shapes, order, fresh views, resumption, NaN guard, normalisation."""

import json

import numpy as np
import pytest
from test_encoders import write_augmentation_sets, write_corpus

from camsat_lobes.encoders import Encoder, IVectorEncoder, build_augmenter
from camsat_lobes.encoders.data import load_segment, read_audio_columns
from camsat_lobes.extract import extract_embeddings, load_embeddings, normalize_embeddings

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Killed(Exception):
    """Stands for the process being killed."""


class Wrapped(Encoder):
    """Wraps an encoder; can die after ``die_after`` calls or return NaN for one utterance."""

    def __init__(self, inner, die_after=None, nan_on_call=None):
        super().__init__(inner.sample_rate)
        self.inner, self.die_after, self.nan_on_call, self.calls = inner, die_after, nan_on_call, 0

    @property
    def embedding_dim(self):
        return self.inner.embedding_dim

    def embed(self, wavs, wav_lens=None):
        self.calls += 1
        if self.die_after is not None and self.calls > self.die_after:
            raise Killed
        out = self.inner.embed(wavs, wav_lens)
        if self.calls == self.nan_on_call:
            out[1] = float("nan")
        return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return write_corpus(root, n_speakers=5, n_sessions=1, n_utterances=3, seconds=0.6), root


@pytest.fixture(scope="module")
def encoder(corpus):
    manifest, root = corpus
    return IVectorEncoder(n_components=4, rank=8, tv_iterations=1).fit(manifest, root / "ivec")


def extract(encoder, corpus, folder, **kwargs):
    manifest, root = corpus
    augmenter = build_augmenter(write_augmentation_sets(root / "augment"), min_augmentations=2)
    options = {"n_views": 3, "batch_size": 2, "chunk_size": 4, "progressbar": False}
    return extract_embeddings(encoder, manifest, folder, augmenter=augmenter, **options | kwargs)


def test_arrays_follow_the_manifest_and_views_differ(encoder, corpus, tmp_path):
    manifest, _ = corpus
    paths = extract(encoder, corpus, tmp_path / "out")
    embeddings, views, ids = load_embeddings(tmp_path / "out")
    manifest_ids = [line.split(",")[0] for line in manifest.read_text().splitlines()[1:]]
    assert ids == manifest_ids == open(paths["ids"]).read().split()
    assert embeddings.dtype == views.dtype == np.float32
    assert embeddings.shape == (15, 8) and views.shape == (15, 3, 8)
    # a clean row equals the embedding of its file alone
    row = read_audio_columns(manifest)[ids[7]]
    alone = encoder.embed(load_segment(row["wav"]).unsqueeze(0)).numpy()[0]
    np.testing.assert_allclose(embeddings[7], alone, rtol=1e-3, atol=1e-4)
    for view in range(3):
        assert not np.allclose(views[:, view], embeddings, atol=1e-3)
    assert not np.allclose(views[:, 0], views[:, 1], atol=1e-3)


def test_killed_run_resumes_to_the_same_arrays(encoder, corpus, tmp_path):
    extract(encoder, corpus, tmp_path / "whole")
    reference = [np.array(a) for a in load_embeddings(tmp_path / "whole")[:2]]

    # 4 utterances per chunk, 2 per batch, 1 clean + 3 view calls per batch:
    # dying on call 21 kills the run in the middle of the third chunk.
    dying = Wrapped(encoder, die_after=20)
    with pytest.raises(Killed):
        extract(dying, corpus, tmp_path / "resumed")
    progress = json.loads((tmp_path / "resumed" / "extraction_progress.json").read_text())
    assert progress["rows_done"] == 8
    with pytest.raises(FileNotFoundError, match="No complete extraction"):
        load_embeddings(tmp_path / "resumed")

    counting = Wrapped(encoder)
    extract(counting, corpus, tmp_path / "resumed")
    assert counting.calls == 4 * 4  # rows 8-14 only: 4 batches, 1 clean + 3 view calls each
    embeddings, views, ids = load_embeddings(tmp_path / "resumed")
    np.testing.assert_array_equal(embeddings, reference[0])
    np.testing.assert_array_equal(views, reference[1])
    assert len(ids) == len(set(ids)) == 15

    again = Wrapped(encoder)
    extract(again, corpus, tmp_path / "resumed")
    assert again.calls == 0  # complete: nothing recomputed


def test_changed_settings_start_again(encoder, corpus, tmp_path):
    extract(encoder, corpus, tmp_path / "out", n_views=1)
    extract(encoder, corpus, tmp_path / "out", n_views=2)
    assert load_embeddings(tmp_path / "out")[1].shape == (15, 2, 8)


def test_nan_embedding_names_the_utterance(encoder, corpus, tmp_path):
    with pytest.raises(FloatingPointError, match=r"utterance spk\d--sess0--u\d \(.*\.wav\)"):
        extract(Wrapped(encoder, nan_on_call=3), corpus, tmp_path / "out")


def test_long_utterances_are_cut(encoder, corpus, tmp_path):
    extract(encoder, corpus, tmp_path / "full", n_views=0)
    extract(encoder, corpus, tmp_path / "cut", n_views=0, max_duration=0.3)
    full, views, _ = load_embeddings(tmp_path / "full")
    cut = load_embeddings(tmp_path / "cut")[0]
    assert views.shape == (15, 0, 8)
    assert not np.allclose(full, cut, atol=1e-3)


def test_normalize_embeddings():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 5.0, size=(200, 4))
    l2 = normalize_embeddings(x, "l2")
    np.testing.assert_allclose(np.linalg.norm(l2, axis=1), 1.0, rtol=1e-5)
    std = normalize_embeddings(x, "std")
    np.testing.assert_allclose(std.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(std.std(axis=0), 1.0, rtol=1e-4)
    views = np.stack([x, x + 1], axis=1)
    scaled = normalize_embeddings(views, "std", reference=x)
    np.testing.assert_allclose(scaled[:, 0], std, rtol=1e-5, atol=1e-6)
    assert normalize_embeddings(views, "l2").shape == (200, 2, 4)
    centered = normalize_embeddings(x, "center")
    np.testing.assert_allclose(np.linalg.norm(centered, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(centered, normalize_embeddings(x - x.mean(axis=0), "l2"), atol=1e-6)
    shifted_views = normalize_embeddings(views, "center", reference=x)
    np.testing.assert_allclose(shifted_views[:, 0], centered, atol=1e-6)
    np.testing.assert_allclose(  # views are shifted by the clean mean, not their own
        shifted_views[:, 1], normalize_embeddings(x + 1 - x.mean(axis=0), "l2"), atol=1e-6
    )
    np.testing.assert_array_equal(normalize_embeddings(x, "none"), x.astype(np.float32))
    with pytest.raises(ValueError, match="Unknown normalisation 'pca'"):
        normalize_embeddings(x, "pca")
