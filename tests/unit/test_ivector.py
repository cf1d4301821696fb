"""i-vector extractor: EM increases the likelihood, training resumes, i-vectors separate voices."""

import json
import pathlib

import numpy as np
import pytest
import soundfile
import torch
from test_encoders import write_corpus

from camsat_lobes.encoders.data import read_audio_columns
from camsat_lobes.encoders.ivector import (
    DiagonalGMM,
    IVectorEncoder,
    MFCCFrontEnd,
    TotalVariability,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"n_components": 8, "rank": 6, "ubm_iterations_per_split": 3, "ubm_final_iterations": 4}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), n_speakers=4, seconds=1.5)


@pytest.fixture(scope="module")
def frames(manifest):
    """Voiced MFCC frames of the whole corpus."""
    data = read_audio_columns(manifest)
    front_end = MFCCFrontEnd()
    pooled = []
    for row in data.values():
        wav = torch.from_numpy(soundfile.read(row["wav"], dtype="float32")[0]).unsqueeze(0)
        feats, mask = front_end(wav)
        pooled.append(feats[mask])
    return torch.cat(pooled)


def test_front_end_drops_silence_and_normalises():
    wav = torch.cat([torch.randn(8000) * 0.3, torch.zeros(8000)]).unsqueeze(0)
    feats, mask = MFCCFrontEnd(vad_threshold_db=30.0)(wav)
    assert mask[0, :45].all() and not mask[0, 55:].any()
    voiced = feats[0][mask[0]]
    assert torch.allclose(voiced.mean(dim=0), torch.zeros(60), atol=1e-4)
    assert torch.allclose(voiced.std(dim=0, unbiased=False), torch.ones(60), atol=1e-2)


def test_ubm_em_never_lowers_the_likelihood(frames):
    gmm = DiagonalGMM(8, frames.shape[1])
    history = gmm.fit(frames, iterations_per_split=3, final_iterations=4)
    assert len(history) == 4 * 3 + 4  # splits 1 -> 2 -> 4 -> 8
    stages = gmm.split_points + [len(history)]
    for start, end in zip(stages[:-1], stages[1:]):
        stage = np.array(history[start:end])
        assert (np.diff(stage) >= -1e-5 * np.abs(stage[:-1])).all(), stage
    assert history[-1] > history[0] + 1.0  # eight Gaussians fit much better than one
    assert torch.allclose(gmm.weights.sum(), torch.tensor(1.0))
    assert bool(gmm.trained)


def test_total_variability_em_increases_the_likelihood(frames):
    torch.manual_seed(0)
    gmm = DiagonalGMM(8, frames.shape[1])
    gmm.fit(frames, iterations_per_split=2, final_iterations=2)
    # Statistics of 40 pseudo-utterances of 100 frames each
    chunks = frames[: (frames.shape[0] // 100) * 100].reshape(-1, 100, frames.shape[1])[:40]
    gamma = gmm.posteriors(chunks)
    zeroth = gamma.sum(dim=1)
    first = gamma.transpose(1, 2) @ chunks - zeroth.unsqueeze(2) * gmm.means
    tv = TotalVariability(8, frames.shape[1], rank=5)
    tv.initialize(gmm.variances, seed=0)
    history = [tv.em_step(zeroth, first, gmm.variances) for _ in range(6)]
    assert all(b > a for a, b in zip(history, history[1:])), history


def test_encoder_trains_resumes_and_separates_voices(manifest, tmp_path):
    save = tmp_path / "ivector"
    first = IVectorEncoder(tv_iterations=2, **SMALL).fit(manifest, save)
    log = json.loads((save / "ivector_log.json").read_text())
    assert len(log["tv"]) == 2 and log["ubm"]
    ubm_means = first.ubm.means.clone()

    resumed = IVectorEncoder(tv_iterations=4, **SMALL).fit(manifest, save)
    log = json.loads((save / "ivector_log.json").read_text())
    assert len(log["tv"]) == 4  # two more iterations, UBM kept
    assert torch.equal(resumed.ubm.means, ubm_means)
    assert all(b > a for a, b in zip(log["tv"], log["tv"][1:]))

    # A finished extractor loads without reading any audio
    data = read_audio_columns(manifest)
    moved = {pathlib.Path(row["wav"]): pathlib.Path(row["wav"] + ".moved") for row in data.values()}
    for old, new in moved.items():
        old.rename(new)
    try:
        loaded = IVectorEncoder(tv_iterations=4, **SMALL).fit(manifest, save)
    finally:
        for old, new in moved.items():
            new.rename(old)
    assert torch.equal(loaded.tv.matrix, resumed.tv.matrix)

    wavs, speakers = [], []
    for utt_id, row in data.items():
        wavs.append(torch.from_numpy(soundfile.read(row["wav"], dtype="float32")[0]))
        speakers.append(utt_id.split("--")[0])
    batch = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    lengths = torch.tensor([len(w) for w in wavs]) / batch.shape[1]
    ivectors = loaded.embed(batch, lengths)
    assert ivectors.shape == (len(wavs), loaded.embedding_dim) == (len(wavs), 6)
    unit = torch.nn.functional.normalize(ivectors - ivectors.mean(dim=0), dim=1)
    cosine = unit @ unit.t()
    same = torch.tensor([[a == b for b in speakers] for a in speakers])
    off_diagonal = ~torch.eye(len(wavs), dtype=torch.bool)
    assert cosine[same & off_diagonal].mean() > cosine[~same].mean() + 0.2
