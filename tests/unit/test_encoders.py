"""Stage-1 encoders: augmentation, self-supervised training, fragments, pretrained folders.

The helpers ``write_corpus`` and ``write_augmentation_sets`` make a tiny synthetic
VoxCeleb-style corpus (harmonic "voices", one colouring per session) and tiny
noise/impulse-response sets; test_ivector.py and test_extract.py use them too.
"""

import csv
import pathlib

import numpy as np
import pytest
import soundfile
import torch
import yaml
from hyperpyyaml import load_hyperpyyaml
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
from speechbrain.lobes.models.ResNet import ResNet
from speechbrain.lobes.models.Xvector import Xvector

from camsat_lobes.encoders import (
    DINOEncoder,
    Encoder,
    IVectorEncoder,
    PretrainedEncoder,
    SimCLREncoder,
    augment_independently,
    build_augmenter,
)
from camsat_lobes.encoders.augmentation import BackgroundNoise, RandomEQ, RoomReverb
from camsat_lobes.encoders.dino import DINOHead, DINOLoss
from camsat_lobes.encoders.simclr import ProjectionHead, nt_xent
from camsat_lobes.encoders.ssl import ssl_dataset

SAMPLE_RATE = 16000
FRAGMENTS = pathlib.Path(__file__).resolve().parents[2] / "hparams" / "encoders"


def speaker_signal(rng, speaker, seconds):
    """Harmonic tone whose pitch and timbre depend on the speaker, with a syllable rhythm."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 110.0 * 1.25**speaker * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(2, 4) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    tilt = 0.5 + 0.4 * (speaker % 3)
    voice = sum(np.sin(k * phase) / k**tilt for k in range(1, 12))
    rhythm = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(3, 5) * t) ** 2
    return voice * rhythm


def write_corpus(root, n_speakers=4, n_sessions=2, n_utterances=2, seconds=1.0, seed=0):
    """Write ``<root>/wav/<spk>/<session>/<utt>.wav`` and ``<root>/train_utts.csv``."""
    rng = np.random.default_rng(seed)
    rows = []
    for speaker in range(n_speakers):
        for session in range(n_sessions):
            colour = rng.uniform(0.2, 1.0)
            for utt in range(n_utterances):
                x = speaker_signal(rng, speaker, seconds)
                x = np.convolve(x, [1.0, -colour], mode="same")
                x = 0.1 * x / np.abs(x).max() + 0.002 * rng.standard_normal(x.size)
                path = root / "wav" / f"spk{speaker}" / f"sess{session}" / f"u{utt}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                soundfile.write(str(path), x.astype(np.float32), SAMPLE_RATE)
                rows.append(
                    {
                        "ID": f"spk{speaker}--sess{session}--u{utt}",
                        "duration": x.size / SAMPLE_RATE,
                        "wav": str(path),
                        "start": 0,
                        "stop": x.size,
                        "spk_id": f"spk{speaker}",
                        "session": f"sess{session}",
                    }
                )
    manifest = root / "train_utts.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def write_augmentation_sets(root, seed=0):
    """Two noises and two impulse responses with CSVs in SpeechBrain's format."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    sets = {}
    for name, make in (
        ("noise", lambda: rng.standard_normal(2 * SAMPLE_RATE) * 0.1),
        ("rir", lambda: np.exp(-np.arange(2000) / 300.0) * rng.standard_normal(2000)),
    ):
        lines = ["ID,duration,wav,wav_format,wav_opts"]
        for i in range(2):
            signal = make().astype(np.float32)
            path = root / f"{name}{i}.wav"
            soundfile.write(str(path), signal, SAMPLE_RATE, subtype="FLOAT")
            lines.append(f"{name}{i},{signal.size / SAMPLE_RATE},{path},wav,")
        (root / f"{name}.csv").write_text("\n".join(lines) + "\n")
        sets[f"{name}_csv"] = str(root / f"{name}.csv")
    return sets


def tiny_ecapa(emb_dim=16):
    return ECAPA_TDNN(80, lin_neurons=emb_dim, channels=[16, 16, 16, 16, 48], attention_channels=8)


QUICK = {"batch_size": 4, "global_seconds": 0.5, "lr": 1e-3}
RUN_OPTS = {"device": "cpu", "noprogressbar": True}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return write_corpus(root), write_augmentation_sets(root / "augment")


# ------------------------------------------------------------------ augmentation


def test_random_eq_colours_each_waveform_differently():
    torch.manual_seed(0)
    wave = torch.randn(1, 8000).repeat(3, 1)
    out = RandomEQ(max_gain_db=10.0, band_limit_prob=1.0)(wave)
    assert not torch.allclose(out[0], out[1], atol=1e-3)
    assert torch.allclose(out.pow(2).sum(dim=1), wave.pow(2).sum(dim=1), rtol=1e-3)


def test_augmenter_uses_sets_and_draws_fresh_views(corpus):
    _, sets = corpus
    augmenter = build_augmenter(sets, min_augmentations=3)
    names = [type(a).__name__ for a in augmenter.augmentations.values()]
    assert names[:3] == ["RoomReverb", "RandomEQ", "BackgroundNoise"]
    torch.manual_seed(0)
    wave = torch.randn(1, 8000).repeat(4, 1)
    lengths = torch.tensor([1.0, 1.0, 0.5, 1.0])
    first, first_lengths = augment_independently(augmenter, wave, lengths)
    second, _ = augment_independently(augmenter, wave, lengths)
    assert first.shape == wave.shape
    assert first_lengths.tolist() == lengths.tolist()
    assert float(first[2, 4000:].abs().max()) == 0.0
    assert not torch.allclose(first[0], first[1], atol=1e-3)  # independent per waveform
    assert not torch.allclose(first, second, atol=1e-3)  # fresh per call


def test_rooms_and_noises_are_drawn_per_waveform(corpus):
    """Identical rows get different rooms and noises; the speech stays aligned."""
    _, sets = corpus
    torch.manual_seed(0)
    wave = torch.zeros(1, 8000)
    wave[0, 1000] = 1.0  # an impulse: the output shows the room
    rows = wave.repeat(6, 1)
    reverberant = RoomReverb(sets["rir_csv"])(rows, torch.ones(6))
    assert int(reverberant[0].abs().argmax()) == 1000  # aligned on the direct path
    assert len({tuple(r.round(decimals=4).tolist()) for r in reverberant}) > 1
    noisy = BackgroundNoise(sets["noise_csv"], 5.0, 5.0)(torch.randn(1, 8000).repeat(6, 1))
    assert not torch.allclose(noisy[0], noisy[1], atol=1e-3)


def test_augmenter_rejects_missing_sets(tmp_path):
    with pytest.raises(FileNotFoundError, match="rir_csv"):
        build_augmenter({"rir_csv": str(tmp_path / "absent.csv")})


# --------------------------------------------------------------- self-supervision


def test_ssl_pipeline_never_reads_labels(corpus, tmp_path):
    manifest, _ = corpus
    rows = list(csv.DictReader(open(manifest)))
    for row in rows:
        row["spk_id"] = row["session"] = "LABEL-MUST-NOT-BE-READ"
    poisoned = tmp_path / "poisoned.csv"
    with open(poisoned, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    dataset = ssl_dataset(poisoned, n_local=1)
    stored = set().union(*(entry.keys() for entry in dataset.data.values()))
    assert stored == {"wav", "start", "stop", "duration", "index"}
    item = dataset[0]
    assert "LABEL" not in repr({k: v for k, v in item.items() if not torch.is_tensor(v)})

    unlabelled = tmp_path / "unlabelled.csv"
    with open(unlabelled, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["ID", "duration", "wav", "start", "stop"])
        writer.writeheader()
        writer.writerows({k: row[k] for k in writer.fieldnames} for row in rows)
    encoder = SimCLREncoder(tiny_ecapa(), ProjectionHead(16, 16, 8), n_epochs=1, **QUICK)
    encoder.fit(unlabelled, tmp_path / "simclr", run_opts=RUN_OPTS)
    assert (tmp_path / "simclr" / "train_log.txt").is_file()


def test_dino_trains_resumes_and_loads(corpus, tmp_path):
    manifest, sets = corpus
    torch.manual_seed(0)

    def make(n_epochs):
        return DINOEncoder(
            tiny_ecapa(),
            DINOHead(16, n_prototypes=32, hidden_size=16, bottleneck_size=8),
            n_local=2,
            local_seconds=0.25,
            n_epochs=n_epochs,
            **QUICK,
        )

    save = tmp_path / "dino"
    first = make(1).fit(manifest, save, augmentation_sets=sets, run_opts=RUN_OPTS)
    assert len((save / "train_log.txt").read_text().splitlines()) == 1
    # the teacher moved towards the student
    student = torch.cat([p.flatten() for p in first.embedding_model.parameters()])
    teacher = torch.cat([p.flatten() for p in first.teacher_model.parameters()])
    assert not torch.equal(student, teacher)
    # An end-of-epoch checkpoint records no pending steps, so the learning-rate and
    # momentum schedules continue where they stopped after a resume.
    (checkpoint,) = (save / "save").glob("CKPT*")
    assert yaml.safe_load((checkpoint / "brain.ckpt").read_text())["step"] == 0

    resumed = make(2).fit(manifest, save, augmentation_sets=sets, run_opts=RUN_OPTS)
    assert len((save / "train_log.txt").read_text().splitlines()) == 2  # one more epoch only
    embeddings = resumed.embed(torch.randn(3, SAMPLE_RATE), torch.tensor([1.0, 0.7, 0.5]))
    assert embeddings.shape == (3, resumed.embedding_dim) == (3, 16)
    assert torch.isfinite(embeddings).all()

    loaded = make(2).fit(manifest, save, augmentation_sets=sets, run_opts=RUN_OPTS)
    assert len((save / "train_log.txt").read_text().splitlines()) == 2  # nothing retrained
    probe = torch.randn(2, SAMPLE_RATE)
    assert torch.allclose(loaded.embed(probe), resumed.embed(probe), atol=1e-5)


@pytest.mark.parametrize(
    "network",
    [
        lambda: Xvector(tdnn_channels=[16, 16, 16, 16, 32], lin_neurons=12, in_channels=80),
        lambda: ResNet(
            input_size=80, channels=[4, 4, 8, 8], block_sizes=[1, 1, 1, 1], lin_neurons=12
        ),
    ],
    ids=["xvector", "resnet"],
)
def test_simclr_trains_other_lobes_with_neighbour_positives(corpus, tmp_path, network):
    manifest, sets = corpus
    encoder = SimCLREncoder(
        network(), ProjectionHead(12, 16, 8), nn_weight=0.5, queue_size=8, n_epochs=2, **QUICK
    )
    encoder.fit(manifest, tmp_path / "simclr", augmentation_sets=sets, run_opts=RUN_OPTS)
    losses = (tmp_path / "simclr" / "train_log.txt").read_text().splitlines()
    assert len(losses) == 2
    assert encoder.embed(torch.randn(2, SAMPLE_RATE)).shape == (2, 12)


def test_losses_prefer_agreement():
    torch.manual_seed(0)
    z = torch.randn(8, 6)
    assert nt_xent(z, z + 0.01 * torch.randn(8, 6), 0.1) < nt_xent(z, torch.randn(8, 6), 0.1)
    loss = DINOLoss(6, teacher_temperature=0.04)
    agreeing = float(loss([z * 10, z * 10], [z, z]))
    loss.center.zero_()
    disagreeing = float(loss([-z * 10, -z * 10], [z, z]))
    assert agreeing < disagreeing
    assert loss.center.abs().sum() > 0


def test_dino_needs_prototype_head():
    with pytest.raises(TypeError, match="prototypes"):
        DINOEncoder(tiny_ecapa(), ProjectionHead(16, 16, 8))


# --------------------------------------------------------------------- fragments


@pytest.mark.parametrize(
    "fragment, cls",
    [
        ("dino_ecapa.yaml", DINOEncoder),
        ("simclr_ecapa.yaml", SimCLREncoder),
        ("ivector.yaml", IVectorEncoder),
    ],
)
def test_fragment_defines_an_encoder(fragment, cls):
    with open(FRAGMENTS / fragment) as handle:
        hparams = load_hyperpyyaml(handle)
    encoder = hparams["encoder"]
    assert isinstance(encoder, cls) and isinstance(encoder, Encoder)
    assert encoder.sample_rate == SAMPLE_RATE
    assert encoder.embed(torch.randn(2, 8000)).shape == (2, encoder.embedding_dim)


@pytest.mark.parametrize(
    "network, lobe",
    [("xvector.yaml", Xvector), ("resnet.yaml", ResNet), ("ecapa.yaml", ECAPA_TDNN)],
)
def test_network_swapped_by_one_line(network, lobe):
    with open(FRAGMENTS / "dino_ecapa.yaml") as handle:
        hparams = load_hyperpyyaml(handle, f"network: !include:{network}")
    encoder = hparams["encoder"]
    assert isinstance(encoder.embedding_model, lobe)
    assert encoder.embed(torch.randn(2, 8000)).shape == (2, 192)


def test_pretrained_fragment_needs_a_folder():
    with open(FRAGMENTS / "pretrained.yaml") as handle:
        with pytest.raises(ValueError, match="PLACEHOLDER"):
            load_hyperpyyaml(handle)


# -------------------------------------------------------------------- pretrained


PRETRAINED_YAML = """
n_mels: 80
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [16, 16, 16, 16, 48]
    attention_channels: 8
    lin_neurons: 16
modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
"""


def test_pretrained_encoder_loads_a_local_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "hyperparams.yaml").write_text(PRETRAINED_YAML)
    torch.manual_seed(0)
    reference = tiny_ecapa()
    torch.save(reference.state_dict(), folder / "embedding_model.ckpt")

    encoder = PretrainedEncoder(folder).fit("unused.csv", tmp_path / "unused", run_opts=RUN_OPTS)
    wavs = torch.randn(2, SAMPLE_RATE)
    embeddings = encoder.embed(wavs)
    assert embeddings.shape == (2, encoder.embedding_dim) == (2, 16)
    model = encoder.model.mods.embedding_model
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), reference.state_dict().values())
    )


def test_pretrained_encoder_names_missing_files(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "hyperparams.yaml").write_text(PRETRAINED_YAML)
    with pytest.raises(FileNotFoundError, match="embedding_model.ckpt"):
        PretrainedEncoder(folder).fit("unused.csv", tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        PretrainedEncoder(tmp_path / "absent").embed(torch.zeros(1, 100))
