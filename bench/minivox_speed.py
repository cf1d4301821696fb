"""Where does MiniVox generation spend its time? A profile of the real renderer, by stage.

Generates a small corpus with the default preset's settings but fewer speakers, in
one process under ``cProfile``, into a temporary folder, and prints one table row per
stage: the neural TTS, the English-to-phoneme step, the room simulation (once per
session), the channel (reverberation, noise, microphone) and the resampling, with
their share of the total and their CPU seconds per second of generated audio. The
TTS model's own operators can be listed too (``--operators``; onnxruntime's
profiler), which shows that its int8 convolutions dominate. ``--settings`` compares
the TTS session's settings on the same sentences in one process: CPU seconds per
second of speech, and whether the waveform stays bit for bit the one the corpus
holds (a setting that changes it would change every generated corpus).

Usage::

    python bench/minivox_speed.py                      # 6 train + 2 test speakers
    python bench/minivox_speed.py --train-speakers 12 --operators
    python bench/minivox_speed.py --settings
"""

import argparse
import collections
import cProfile
import json
import pstats
import tempfile
import time
from pathlib import Path

import numpy as np

from camsat_lobes.minivox import MiniVoxConfig, channel, corpus, generate_minivox, phonemes, tts

#: Stage name -> the function whose cumulative time is that stage.
STAGES = {
    "TTS (Kokoro-82M, onnxruntime)": tts.KokoroTTS.synthesize,
    "text to phoneme tokens": phonemes.english_to_ipa,
    "room impulse responses (per session)": channel.ChannelSimulator._room_impulse_response,
    "channel: reverberation, noise, microphone": channel.ChannelSimulator.apply,
    "resampling 24 -> 16 kHz": corpus._resample,
}


def _cumulative_seconds(stats, function):
    code = function.__code__
    for (filename, line, name), row in stats.stats.items():
        if (filename, line, name) == (code.co_filename, code.co_firstlineno, code.co_name):
            return row[3]
    return 0.0


def operator_table(num_runs=2, top=8):
    """Rows (operator, seconds, share) of the TTS model on one sentence, from onnxruntime."""
    with tempfile.TemporaryDirectory() as folder:
        model = tts.KokoroTTS(profile_prefix=Path(folder) / "tts")
        tokens = phonemes.ipa_to_tokens(
            phonemes.english_to_ipa("The quick brown fox jumps over the lazy dog."),
            tts.load_vocab(),
        )
        table = tts.load_style_packs()[1][0]
        for _ in range(num_runs):
            model.synthesize(tokens, table, speed=1.0)
        events = json.loads(Path(model.session.end_profiling()).read_text())
    per_operator = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_operator[event["args"]["op_name"]] += event["dur"] / 1e6
    total = sum(per_operator.values())
    return [(op, seconds, seconds / total) for op, seconds in per_operator.most_common(top)]


#: Sentences of the settings comparison (about 15 s of speech).
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore every summer.",
    "A journey of a thousand miles begins with a single step.",
    "Please call Stella and ask her to bring these things with her from the store.",
)


def _session_variants():
    """Return the settings compared: name -> a function changing the session options."""
    import onnxruntime

    level = onnxruntime.GraphOptimizationLevel
    return {
        "as the generator runs it (1 thread, all graph optimisations)": lambda o: None,
        "basic graph optimisations only": lambda o: setattr(
            o, "graph_optimization_level", level.ORT_ENABLE_BASIC
        ),
        "extended graph optimisations": lambda o: setattr(
            o, "graph_optimization_level", level.ORT_ENABLE_EXTENDED
        ),
        "2 intra-op threads in one process": lambda o: setattr(o, "intra_op_num_threads", 2),
        "no CPU memory arena": lambda o: setattr(o, "enable_cpu_mem_arena", False),
        "denormals as zero": lambda o: o.add_session_config_entry(
            "session.set_denormal_as_zero", "1"
        ),
    }


def settings_table(repeats=2):
    """Time every setting on the same sentences.

    Returns rows (setting, CPU s per audio s, ratio to the generator's, same waveform).
    """
    model = tts.KokoroTTS()
    vocab, table = tts.load_vocab(), tts.load_style_packs()[1][0]
    tokens = [phonemes.ipa_to_tokens(phonemes.english_to_ipa(s), vocab) for s in SENTENCES]
    reference = [model.synthesize(t, table, speed=1.0) for t in tokens]
    audio_seconds = sum(len(a) for a in reference) / tts.SAMPLE_RATE
    models = {name: tts.KokoroTTS(configure=change) for name, change in _session_variants().items()}
    cpu = collections.Counter()
    identical = {}
    for _ in range(repeats):  # interleaved, so that a busy moment hits every setting
        for name, variant in models.items():
            start = time.process_time()
            audio = [variant.synthesize(t, table, speed=1.0) for t in tokens]
            cpu[name] += time.process_time() - start
            identical[name] = all(np.array_equal(a, b) for a, b in zip(audio, reference))
    base = next(iter(models))
    return [
        (name, cpu[name] / repeats / audio_seconds, cpu[name] / cpu[base], identical[name])
        for name in models
    ]


def main():
    """Generate a small corpus under the profiler and print where the time goes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-speakers", type=int, default=6)
    parser.add_argument("--test-speakers", type=int, default=2)
    parser.add_argument("--operators", action="store_true", help="also profile the TTS operators")
    parser.add_argument(
        "--settings", action="store_true", help="only compare the TTS session's settings"
    )
    args = parser.parse_args()
    if args.settings:
        batch = tts.KokoroTTS().session.get_inputs()[0].shape[0]
        print(f"The model's token input has a fixed batch size of {batch}.\n")
        print("| TTS session setting | CPU s per audio s | vs the generator's | same waveform |")
        print("|---|---:|---:|---|")
        for name, per_second, ratio, same in settings_table():
            print(f"| {name} | {per_second:.3f} | {ratio:.2f}x | {'yes' if same else 'no'} |")
        return

    config = MiniVoxConfig(
        num_train_speakers=args.train_speakers, num_test_speakers=args.test_speakers
    )
    tts.model_file()  # assemble the model outside the profile
    profile = cProfile.Profile()
    with tempfile.TemporaryDirectory() as folder:
        profile.enable()
        root = generate_minivox(config, Path(folder) / "minivox", num_workers=1)
        profile.disable()
        summary = json.loads((root / "metadata.json").read_text())["summary"]
    audio, utterances = summary["hours"] * 3600, summary["utterances"]
    stats = pstats.Stats(profile)
    total = stats.total_tt
    print(f"{utterances} utterances, {audio:.1f} s of audio, {total:.1f} s in one process\n")
    print("| stage | seconds | share | CPU s per audio s |")
    print("|---|---:|---:|---:|")
    accounted = 0.0
    for name, function in STAGES.items():
        seconds = _cumulative_seconds(stats, function)
        accounted += seconds
        print(f"| {name} | {seconds:.1f} | {seconds / total:.0%} | {seconds / audio:.3f} |")
    rest = total - accounted
    print(f"| everything else | {rest:.1f} | {rest / total:.0%} | {rest / audio:.3f} |")
    print(f"| total | {total:.1f} | 100% | {total / audio:.3f} |")
    if args.operators:
        print("\n| TTS operator | seconds | share |")
        print("|---|---:|---:|")
        for op, seconds, share in operator_table():
            print(f"| {op} | {seconds:.2f} | {share:.0%} |")


if __name__ == "__main__":
    main()
