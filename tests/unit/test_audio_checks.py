"""Audio checks: non-finite samples, the ffmpeg lookup, and the parallel resumable conversion."""

import builtins
import os
import subprocess

import numpy as np
import pytest
import soundfile as sf
from audio_corpus import RATE, tone

import camsat_lobes.audio_checks as audio_checks
from camsat_lobes.audio_checks import (
    check_audio_file,
    checks,
    conversion,
    convert_files,
    find_ffmpeg,
)


def test_non_finite_check_reads_every_block(tmp_path, monkeypatch):
    monkeypatch.setattr(checks, "FINITE_CHECK_BLOCK", 1000)
    signal = tone(3.0)
    signal[-1] = np.nan  # in the last block, after the silence probes' windows
    path = tmp_path / "late_nan.wav"
    sf.write(path, signal, RATE, subtype="FLOAT")
    check = check_audio_file(path, tmp_path / "converted.wav")
    assert not check.usable and check.problem.startswith("non-finite samples (1 NaN")


@pytest.fixture
def nothing_found(monkeypatch):
    """No ffmpeg on the PATH and no imageio-ffmpeg package."""
    monkeypatch.setattr(conversion.shutil, "which", lambda name: None)
    real_import = builtins.__import__

    def without_imageio(name, *args, **kwargs):
        if name == "imageio_ffmpeg":
            raise ImportError("No module named 'imageio_ffmpeg'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_imageio)


def test_missing_ffmpeg_names_both_fixes(nothing_found):
    assert find_ffmpeg() is None
    with pytest.raises(FileNotFoundError) as error:
        audio_checks.require_ffmpeg("converting VoxCeleb2")
    message = str(error.value)
    assert message.startswith("ffmpeg is needed for converting VoxCeleb2, and there is none")
    assert "`apt-get install ffmpeg`" in message and "`pip install imageio-ffmpeg`" in message


def test_ffmpeg_on_the_path_comes_first(monkeypatch):
    monkeypatch.setattr(conversion.shutil, "which", lambda name: "/usr/bin/ffmpeg")
    assert find_ffmpeg() == "/usr/bin/ffmpeg"


@pytest.fixture
def ffmpeg():
    found = find_ffmpeg()
    if found is None:
        pytest.skip("no ffmpeg: pip install imageio-ffmpeg")
    return found


def test_conversion_is_parallel_resumable_and_reports_ffmpegs_reason(tmp_path, ffmpeg, monkeypatch):
    sources = []
    for index in range(3):
        wav = tmp_path / f"in{index}.wav"
        sf.write(wav, tone(1.0, rate=8000), 8000)
        m4a = wav.with_suffix(".m4a")
        encode = [ffmpeg, "-nostdin", "-loglevel", "error", "-i", str(wav), "-c:a", "aac"]
        subprocess.run([*encode, str(m4a)], check=True)
        sources.append(str(m4a))
    broken = tmp_path / "broken.m4a"
    broken.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(64))
    jobs = [
        (source, str(tmp_path / "out" / f"{index}.wav")) for index, source in enumerate(sources)
    ]
    jobs.append((str(broken), str(tmp_path / "out" / "broken.wav")))

    failures = convert_files(jobs, ffmpeg, workers=2)
    assert [bool(failures[source]) for source, _ in jobs] == [False, False, False, True]
    assert failures[str(broken)]  # ffmpeg's own words
    for _, target in jobs[:3]:
        info = sf.info(target)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert not os.path.exists(jobs[3][1]) and not list((tmp_path / "out").glob("*.partial"))

    converted = []
    monkeypatch.setattr(
        conversion, "convert_with_ffmpeg", lambda source, *args: converted.append(source) or ""
    )
    os.utime(sources[1])  # a source newer than its conversion is converted again
    assert convert_files(jobs, ffmpeg, workers=2)[sources[0]] == ""
    assert sorted(converted) == sorted([sources[1], str(broken)])
