import itertools
import json

import numpy as np
import pytest
import soundfile as sf

from camsat_lobes.mfcc_baseline import CONDITIONS, main, separability_report

RATE = 16000


def envelope(rng, bins, depth_db, knots=10):
    shape_db = np.interp(
        np.linspace(0, 1, bins), np.linspace(0, 1, knots), rng.uniform(-depth_db, depth_db, knots)
    )
    return 10 ** (shape_db / 20)


def utterance(rng, f0, speaker, session, noise, seconds=1.5):
    """Harmonic 'speech' coloured by the speaker's and the session's spectra, plus noise."""
    t = np.arange(int(seconds * RATE)) / RATE
    pitch = f0 * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    source = sum(np.sin(k * phase) / k for k in range(1, int(7000 // f0)))
    source *= 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(3, 5) * t)
    spectrum = np.fft.rfft(source) * speaker * session
    voiced = np.fft.irfft(spectrum, len(t))
    hiss = np.fft.irfft(np.fft.rfft(rng.standard_normal(len(t))) * session, len(t))
    signal = voiced / voiced.std() + noise * hiss / hiss.std()
    return 0.1 * signal / np.abs(signal).max()


def write_corpus(root, seed=0, speakers=12, sessions=2, utterances=3):
    """Speakers 0-5 train, 6-11 test; each session has its own colouring and noise level."""
    rng = np.random.default_rng(seed)
    bins = int(1.5 * RATE) // 2 + 1
    test_files = []
    for spk in range(speakers):
        f0, speaker = rng.uniform(90, 240), envelope(rng, bins, 6)
        for sess in range(sessions):
            session, noise = envelope(rng, bins, 12), rng.uniform(0.05, 0.4)
            for utt in range(utterances):
                relative = f"spk{spk:02d}/sess{sess}/utt{utt}.wav"
                path = root / "wav" / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, utterance(rng, f0, speaker, session, noise), RATE)
                if spk >= speakers // 2:
                    test_files.append(relative)
    lines = [
        f"{int(a.split('/')[0] == b.split('/')[0])} {a} {b}"
        for a, b in itertools.combinations(test_files, 2)
    ]
    (root / "trials.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("mfcc") / "corpus")


def test_report_shows_the_session_effect(corpus, tmp_path):
    report = separability_report(corpus, tmp_path / "out")
    rows = {row["condition"]: row for row in report["rows"]}
    assert list(rows) == list(CONDITIONS)
    for row in rows.values():
        assert 0.0 <= row["eer"] <= 0.5 and 0.0 <= row["eer_raw"] <= 0.5
        assert row["nontargets"] == 6 * 6 * 5 * 6 // 2
    same, cross = rows["same-session targets"], rows["cross-session targets"]
    assert same["targets"] + cross["targets"] == rows["all trials"]["targets"] == 6 * 15
    assert same["eer"] < cross["eer"]
    assert report["embedding"]["dimension"] == 48
    saved = json.loads((tmp_path / "out" / "mfcc_separability.json").read_text())
    assert saved["rows"] == report["rows"]
    assert (
        "| cross-session targets | 54 |" in (tmp_path / "out" / "mfcc_separability.md").read_text()
    )


def test_command_line_prints_the_table(corpus, tmp_path, capsys):
    report = main(["--data-folder", str(corpus), "--save-folder", str(tmp_path / "cli")])
    printed = capsys.readouterr().out
    assert printed.startswith("| condition | target trials |")
    assert all(f"| {condition} |" in printed for condition in CONDITIONS)
    assert len(report["rows"]) == 3


def test_corpus_without_trials_is_refused(tmp_path):
    root = tmp_path / "corpus"
    (root / "wav" / "a" / "s").mkdir(parents=True)
    sf.write(root / "wav" / "a" / "s" / "u.wav", 0.1 * np.ones(RATE), RATE)
    with pytest.raises(ValueError, match="holds no trial"):
        separability_report(root, tmp_path / "out")
