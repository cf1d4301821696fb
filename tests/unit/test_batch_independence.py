"""An utterance's embedding is the same alone and in any zero-padded batch, for every encoder."""

import numpy as np
import pytest
import soundfile
import speechbrain as sb
import torch
from speechbrain.lobes.features import Fbank
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
from test_encoders import (
    PRETRAINED_YAML,
    RUN_OPTS,
    SAMPLE_RATE,
    tiny_ecapa,
    write_corpus,
)

from camsat_lobes.encoders import DINOEncoder, IVectorEncoder, PretrainedEncoder, SimCLREncoder
from camsat_lobes.encoders.base import embed_unpadded
from camsat_lobes.encoders.dino import DINOHead
from camsat_lobes.extract import extract_embeddings, load_embeddings
from camsat_lobes.margins import AAMSoftmax
from camsat_lobes.speaker_training import SpeakerBrain

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SECONDS = (0.7, 1.3, 2.0, 2.9)
TOLERANCE = 1e-4
KINDS = ("simclr", "dino", "speaker", "ivector", "pretrained")


def speech_like(rng, seconds):
    """Sum of harmonics of a wandering pitch, with a syllable rhythm and a little noise."""
    t = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    f0 = rng.uniform(90, 220) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(1, 3) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voice = sum(rng.uniform(0.2, 1.0) * np.sin(k * phase) / k for k in range(1, 10))
    rhythm = 0.3 + 0.7 * np.sin(2 * np.pi * rng.uniform(2, 5) * t) ** 2
    x = voice * rhythm
    x = 0.1 * x / np.abs(x).max() + 0.003 * rng.standard_normal(x.size)
    return torch.from_numpy(x.astype(np.float32))


def pad(signals):
    """Zero-padded batch and relative lengths, as SpeechBrain's PaddedBatch makes them."""
    wavs = torch.nn.utils.rnn.pad_sequence(signals, batch_first=True)
    return wavs, torch.tensor([len(s) / wavs.shape[1] for s in signals])


def unit(x):
    x = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.array(x))
    return torch.nn.functional.normalize(x.detach().float().cpu(), dim=-1)


def gap(a, b):
    return float((unit(a) - unit(b)).abs().max())


@pytest.fixture(scope="module")
def signals():
    rng = np.random.default_rng(7)
    return [speech_like(rng, seconds) for seconds in SECONDS]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory, signals):
    """The signals as files, in a manifest whose rows are not sorted by length."""
    root = tmp_path_factory.mktemp("utterances")
    rows = ["ID,duration,wav,start,stop"]
    for i in (2, 0, 3, 1):
        path = root / f"utt{i}.wav"
        soundfile.write(str(path), signals[i].numpy(), SAMPLE_RATE, subtype="FLOAT")
        rows.append(f"utt{i},{len(signals[i]) / SAMPLE_RATE},{path},0,{len(signals[i])}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    """One tiny encoder of each kind (random networks, a briefly trained i-vector)."""
    torch.manual_seed(0)
    built = {
        "simclr": SimCLREncoder(tiny_ecapa(), torch.nn.Identity()),
        "dino": DINOEncoder(tiny_ecapa(), DINOHead(16, 32, 16, 8)),
    }
    modules = {
        "compute_features": Fbank(n_mels=20),
        "mean_var_norm": sb.processing.features.InputNormalization(norm_type="sentence"),
        "embedding_model": ECAPA_TDNN(
            20, channels=[16, 16, 16, 16, 48], attention_channels=8, lin_neurons=8
        ),
        "speaker_loss": AAMSoftmax(embedding_dim=8, n_classes=3),
    }
    built["speaker"] = SpeakerBrain(modules, torch.optim.Adam, run_opts=RUN_OPTS)
    root = tmp_path_factory.mktemp("encoders")
    corpus = write_corpus(root / "corpus", n_speakers=3, n_sessions=1, n_utterances=2)
    built["ivector"] = IVectorEncoder(n_components=4, rank=8, tv_iterations=1).fit(
        corpus, root / "ivector", run_opts=RUN_OPTS
    )
    folder = root / "pretrained"
    folder.mkdir()
    (folder / "hyperparams.yaml").write_text(PRETRAINED_YAML)
    torch.save(tiny_ecapa().state_dict(), folder / "embedding_model.ckpt")
    built["pretrained"] = PretrainedEncoder(folder).fit("unused.csv", root, run_opts=RUN_OPTS)
    return built


@pytest.mark.parametrize("kind", KINDS)
def test_embedding_alone_equals_any_batch(encoders, signals, kind):
    encoder = encoders[kind]
    alone = torch.cat([encoder.embed(s.unsqueeze(0), torch.ones(1)) for s in signals])

    wavs, lengths = pad(signals)
    batched = encoder.embed(wavs, lengths)
    assert gap(batched, alone) <= TOLERANCE

    order = [2, 0, 3, 1]
    wavs, lengths = pad([signals[i] for i in order])
    shuffled = encoder.embed(wavs, lengths)
    assert gap(shuffled, alone[order]) <= TOLERANCE

    # two rows of one length share a pass with each other and with nothing else
    wavs, lengths = pad([signals[1], signals[3], signals[1]])
    assert gap(encoder.embed(wavs, lengths), alone[[1, 3, 1]]) <= TOLERANCE

    # the networks themselves do see the padding: the check above is not vacuous
    wavs, lengths = pad(signals)
    assert gap(encoder._embed_batch(wavs, lengths)[:3], alone[:3]) > 10 * TOLERANCE


@pytest.mark.parametrize("kind", KINDS)
def test_extraction_does_not_depend_on_batch_size(encoders, signals, manifest, tmp_path, kind):
    encoder = encoders[kind]
    options = {"n_views": 0, "chunk_size": 4, "progressbar": False}
    extract_embeddings(encoder, manifest, tmp_path / "one", batch_size=1, **options)
    extract_embeddings(encoder, manifest, tmp_path / "three", batch_size=3, **options)
    one, _, ids = load_embeddings(tmp_path / "one")
    three = load_embeddings(tmp_path / "three")[0]
    assert gap(three, one) <= TOLERANCE
    alone = torch.cat([encoder.embed(signals[int(i[3:])].unsqueeze(0), torch.ones(1)) for i in ids])
    assert gap(three, alone) <= TOLERANCE


def test_cut_utterances_batch_together_and_match_alone(encoders, signals, manifest, tmp_path):
    encoder = encoders["simclr"]
    assert encoder.embedding_dim == 16  # probed here, not during the extraction below
    calls, compute = [], encoder._embed_batch

    def counted(wavs, wav_lens):
        calls.append(tuple(wavs.shape))
        return compute(wavs, wav_lens)

    encoder._embed_batch = counted
    try:
        extract_embeddings(
            encoder,
            manifest,
            tmp_path / "cut",
            n_views=0,
            batch_size=4,
            max_duration=1.0,
            progressbar=False,
        )
    finally:
        del encoder._embed_batch
    # the three utterances longer than 1 s are cut to 1 s and share one pass
    assert sorted(calls) == [(1, int(0.7 * SAMPLE_RATE)), (3, SAMPLE_RATE)]
    embeddings, _, ids = load_embeddings(tmp_path / "cut")
    alone = torch.cat(
        [encoder.embed(signals[int(i[3:])][None, :SAMPLE_RATE], torch.ones(1)) for i in ids]
    )
    assert gap(embeddings, alone) <= TOLERANCE


def test_helper_makes_a_padding_sensitive_embedding_batch_independent(signals):
    calls = []

    def padded_mean(wavs, wav_lens):
        """Mean magnitude over the whole tensor: the padding pulls it towards zero."""
        calls.append(wavs.shape)
        return wavs.abs().mean(dim=1, keepdim=True)

    alone = torch.cat([padded_mean(s.unsqueeze(0), None) for s in signals])
    wavs, lengths = pad(signals)
    assert not torch.allclose(padded_mean(wavs, lengths)[:3], alone[:3], rtol=0.1)

    calls.clear()
    assert torch.equal(embed_unpadded(padded_mean, wavs, lengths), alone)
    assert calls == [(1, len(s)) for s in signals]

    order = [3, 1, 0, 2, 1]
    wavs, lengths = pad([signals[i] for i in order])
    calls.clear()
    assert torch.equal(embed_unpadded(padded_mean, wavs, lengths), alone[order])
    assert sorted(calls) == sorted(
        [(1, len(signals[i])) for i in (0, 2, 3)] + [(2, len(signals[1]))]
    )

    # no lengths, or no padding: one call on the batch as it is
    full = torch.stack([s[: SAMPLE_RATE // 2] for s in signals])
    expected = padded_mean(full, None)
    for lengths in (None, torch.ones(4)):
        calls.clear()
        assert torch.equal(embed_unpadded(padded_mean, full, lengths), expected)
        assert calls == [full.shape]
