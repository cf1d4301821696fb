"""How fast VoxCeleb2's m4a files convert to 16 kHz mono wav, by number of ffmpeg workers.

Writes N m4a (AAC, 16 kHz mono, like VoxCeleb2's) files of a given length into a
temporary folder (a few distinct recordings of noise-modulated tones, copied to N
names), then converts them all with :func:`camsat_lobes.audio_checks.convert_files`
once per worker count, each time into an empty folder, and prints one table row per
count: files per second and what VoxCeleb2 dev's 1,092,009 files would take at that
rate. A last row times a rerun over the converted files (the resumable case: nothing
is converted again). VoxCeleb2 dev's mean utterance length is about 7.8 s
(2,360 h / 1,092,009 files).

The CPU seconds that the ffmpeg processes used per file (``RUSAGE_CHILDREN``) are
printed too: on a machine shared with other jobs the wall-clock rate says little, but
the CPU cost per file gives the rate on idle cores (cores / CPU seconds per file).

Usage::

    python bench/convert_m4a.py                        # 300 files of 7.8 s, 1 and 2 workers
    python bench/convert_m4a.py --files 1000 --workers 1 2 4 8 --seconds 4
"""

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from camsat_lobes.audio_checks import convert_files, require_ffmpeg

VOXCELEB2_DEV_FILES = 1_092_009
DISTINCT = 8  # distinct recordings, copied to reach the number of files


def make_m4a(folder, count, seconds, ffmpeg, rate=16000):
    """Write ``count`` m4a files of ``seconds`` each (``DISTINCT`` recordings, copied)."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    sources = []
    for index in range(min(DISTINCT, count)):
        envelope = np.abs(np.sin(2 * np.pi * (2 + index) * t))
        signal = 0.2 * envelope * np.sin(2 * np.pi * (120 + 30 * index) * t)
        signal += 0.01 * rng.standard_normal(t.size)
        wav = folder / f"source{index}.wav"
        sf.write(wav, signal, rate)
        m4a = wav.with_suffix(".m4a")
        command = [ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-i", str(wav)]
        subprocess.run([*command, "-c:a", "aac", "-b:a", "64k", str(m4a)], check=True)
        sources.append(m4a)
    files = []
    for index in range(count):
        path = (
            folder
            / "aac"
            / f"id{index // 100:05d}"
            / f"video{index // 10:05d}"
            / f"{index:05d}.m4a"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sources[index % len(sources)], path)
        files.append(path)
    return files


def children_cpu():
    """CPU seconds (user + system) used so far by the finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(jobs, ffmpeg, workers):
    """Convert ``jobs`` with ``workers`` ffmpeg processes; return wall s, ffmpeg CPU s, failures."""
    start, cpu = time.perf_counter(), children_cpu()
    failures = convert_files(jobs, ffmpeg, workers=workers, desc=f"{workers} workers")
    failed = sum(bool(failure) for failure in failures.values())
    return time.perf_counter() - start, children_cpu() - cpu, failed


def row(label, count, seconds, cpu, failed):
    """One table row: files per second, ffmpeg CPU per file, the time VoxCeleb2 dev would take."""
    rate = count / seconds
    hours = VOXCELEB2_DEV_FILES / rate / 3600
    per_file = cpu / count
    idle = f"{VOXCELEB2_DEV_FILES * per_file / 3600 / 8:.1f} h" if per_file else "-"
    return (
        f"| {label} | {count} | {failed} | {seconds:.1f} | {rate:.1f} | {hours:.1f} h "
        f"| {per_file * 1000:.0f} ms | {idle} |"
    )


def main():
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=300, help="m4a files to convert")
    parser.add_argument("--seconds", type=float, default=7.8, help="length of each file")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="ffmpeg workers")
    args = parser.parse_args()
    ffmpeg = require_ffmpeg("this benchmark")
    version = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = make_m4a(folder, args.files, args.seconds, ffmpeg)
        print(f"ffmpeg: {ffmpeg} ({version.split(chr(10))[0]}); {os.cpu_count()} CPUs")
        print(f"{args.files} m4a files of {args.seconds:g} s each\n")
        print(
            "| ffmpeg workers | files | failed | seconds | files/s | VoxCeleb2 dev at this rate "
            "| ffmpeg CPU per file | VoxCeleb2 dev on 8 idle cores |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        jobs = None
        for workers in args.workers:
            out = folder / f"wav_{workers}"
            jobs = [(path, out / path.relative_to(folder).with_suffix(".wav")) for path in files]
            seconds, cpu, failed = timed(jobs, ffmpeg, workers)
            print(row(str(workers), len(jobs), seconds, cpu, failed), flush=True)
        seconds, cpu, failed = timed(jobs, ffmpeg, args.workers[-1])
        print(row("rerun, all converted before", len(jobs), seconds, cpu, failed))


if __name__ == "__main__":
    main()
