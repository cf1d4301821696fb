"""The command line: ``python -m camsat_lobes.inference verify|embed|export``.

Authors
 * camsat contributors 2026
"""

import argparse
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

from camsat_lobes.inference.checks import AudioLimits, RecordingError, read_recording
from camsat_lobes.inference.export import read_threshold_source
from camsat_lobes.inference.interface import CAMSATSpeakerRecognition
from camsat_lobes.inference.portable import export_portable
from camsat_lobes.inference.runner import (
    PORTABLE_FORMATS,
    PORTABLE_SUFFIXES,
    PortableEmbedder,
    portable_model_folder,
)

__all__ = ["main"]

LIMITS = AudioLimits()

AUDIO_CHECKS = textwrap.fill(
    "audio checks: before embedding, each file must be readable, hold finite samples, last "
    f"at least --min-duration seconds (default {LIMITS.min_duration:g}) and hold at least "
    f"--min-speech seconds (default {LIMITS.min_speech:g}) of 20 ms frames whose RMS level "
    f"reaches --speech-threshold dBFS (default {LIMITS.speech_threshold:g}; 0 dBFS is full "
    "scale). A refused file is named on stderr with the reason, and no score is given for "
    "it. The speech check measures energy only: it refuses silence and near-silence, but "
    "cannot tell speech from noise, music or hum at speech-like levels; white noise passes "
    "it, and its scores mean nothing.",
    width=79,
)

EXIT_STATUS = textwrap.fill(
    "exit status: 0 on success; 1 when a model or a file was refused (the reasons are on "
    "stderr); 2 for a usage error.",
    width=79,
)


def _parser():
    """Build the argument parser of the command line."""
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="python -m camsat_lobes.inference",
        description=(
            "Use a CAMSAT model folder (written by the recipe's verify stage or by\n"
            "camsat_lobes.inference.export_model) to verify a pair of recordings, to embed\n"
            "recordings, or to export its network as ONNX or TorchScript. Audio at another\n"
            "sampling rate is resampled to the model's; several channels are averaged.\n"
            "Run 'COMMAND --help' for the options of a command."
        ),
        epilog=(
            "examples:\n"
            "  python -m camsat_lobes.inference verify MODEL_DIR a.wav b.wav\n"
            "  python -m camsat_lobes.inference embed MODEL_DIR *.wav -o emb.npy\n"
            "  python -m camsat_lobes.inference export --format onnx MODEL_DIR\n"
            "  python -m camsat_lobes.inference verify MODEL_DIR/embedding_model.onnx a.wav b.wav\n"
            f"\n{EXIT_STATUS}"
        ),
        formatter_class=raw,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    model_help = (
        "the model folder (MODEL_DIR), or an .onnx / .pt file exported from it by "
        "'export', kept in or beside the folder (the folder gives the training mean, "
        "AS-norm cohort and threshold)"
    )
    verify = commands.add_parser(
        "verify",
        help="score two recordings and decide whether they share a speaker",
        description=(
            "Score two recordings as the recipe does (cosine after subtracting the\n"
            "training mean, AS-norm when the model has a cohort) and print\n"
            "'score S -> same speaker|different speakers (threshold T)' (same speaker\n"
            "when the score is above the threshold), then how the threshold was chosen."
        ),
        epilog=f"{AUDIO_CHECKS}\n\n{EXIT_STATUS}",
        formatter_class=raw,
    )
    verify.add_argument("model", metavar="MODEL", help=model_help)
    verify.add_argument("enrol", metavar="A", help="first (enrolment) recording")
    verify.add_argument("test", metavar="B", help="second (test) recording")
    verify.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="decision threshold (default: the one saved with the model)",
    )
    embed = commands.add_parser(
        "embed",
        help="embed recordings into an (N, D) float32 .npy array",
        description=(
            "Embed each recording (alone, at its full length) and write an (N, D)\n"
            "float32 array, one row per accepted file in the order given, plus a text\n"
            "file listing those files in row order (OUTPUT with .ids.txt instead of .npy).\n"
            "Refused files are listed on stderr with the reason; the others are written."
        ),
        epilog=f"{AUDIO_CHECKS}\n\n{EXIT_STATUS}",
        formatter_class=raw,
    )
    embed.add_argument("model", metavar="MODEL", help=model_help)
    embed.add_argument("files", metavar="FILE", nargs="+", help="recordings to embed")
    embed.add_argument(
        "-o", "--output", required=True, metavar="OUTPUT", help="the .npy file to write"
    )
    for command in (verify, embed):
        command.add_argument(
            "--device",
            default="cpu",
            help="torch device to run on (default: cpu; an exported file runs on the CPU)",
        )
        checks = command.add_argument_group("audio checks (see below)")
        checks.add_argument(
            "--min-duration",
            type=float,
            default=LIMITS.min_duration,
            metavar="SECONDS",
            help=f"shortest accepted recording (default {LIMITS.min_duration:g})",
        )
        checks.add_argument(
            "--speech-threshold",
            type=float,
            default=LIMITS.speech_threshold,
            metavar="DBFS",
            help="frame level from which a frame counts as speech-level sound "
            f"(default {LIMITS.speech_threshold:g})",
        )
        checks.add_argument(
            "--min-speech",
            type=float,
            default=LIMITS.min_speech,
            metavar="SECONDS",
            help=f"least speech-level sound a recording must hold (default {LIMITS.min_speech:g})",
        )
    export = commands.add_parser(
        "export",
        help="write the embedding network as an ONNX or TorchScript file",
        description=(
            "Export the embedding network of MODEL_DIR to one file: input 'wavs' (batch,\n"
            "time) float32 waveforms at the model's rate, with SpeechBrain's filter banks\n"
            "inside, or, when those do not export (or with --features outside), input\n"
            "'fbanks' (batch, frames, n_mels) computed by the folder's compute_features;\n"
            "output 'embeddings' (batch, dim). Batch and length axes are dynamic but there\n"
            "is no padding: every row must be a whole recording and the rows of a call\n"
            "equally long (embed other lengths in separate calls, e.g. a batch of one).\n"
            "The file is checked against SpeechBrain's embeddings before it is kept, and\n"
            "the folder's README describes it. verify and embed accept it as MODEL."
        ),
        epilog=EXIT_STATUS,
        formatter_class=raw,
    )
    export.add_argument("folder", metavar="MODEL_DIR", help="the model folder")
    export.add_argument(
        "--format", required=True, choices=sorted(PORTABLE_FORMATS), help="the file's format"
    )
    export.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="the file to write (default: MODEL_DIR/embedding_model.onnx or .pt)",
    )
    export.add_argument(
        "--features",
        choices=("auto", "inside", "outside"),
        default="auto",
        help="filter banks inside the file, outside, or inside when they export (default)",
    )
    return parser


def _load(model_arg, device):
    """Load the model named on the command line: a folder, or an exported file in it.

    Returns the SpeechBrain interface of the folder and a function that embeds one
    (time,) waveform into a (dim,) CPU tensor.
    """
    path = Path(model_arg)
    if path.suffix not in PORTABLE_SUFFIXES:
        model = CAMSATSpeakerRecognition.from_hparams(path, run_opts={"device": device})
        return model, lambda wav: model.encode_batch(wav.to(model.device))[0, 0].float().cpu()
    folder = portable_model_folder(path)
    model = CAMSATSpeakerRecognition.from_hparams(folder, run_opts={"device": "cpu"})
    embedder = PortableEmbedder(path, compute_features=model.mods.compute_features)
    return model, lambda wav: embedder.embed(wav.unsqueeze(0).cpu())[0]


def _embed_file(model, embed, path, limits):
    """Read, check and embed one file; raise ``RecordingError`` naming it when refused."""
    wav = read_recording(path, model.audio_normalizer, limits)
    try:
        with torch.no_grad():
            embedding = embed(wav)
    except RuntimeError as err:  # e.g. a recording shorter than the network's context
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else "no message"
        raise RecordingError(path, f"the network cannot embed it ({reason})") from err
    if not bool(torch.isfinite(embedding).all()):
        raise RecordingError(path, "its embedding is not finite")
    return embedding


def main(argv=None):
    """Run the command line (``python -m camsat_lobes.inference --help``).

    ``verify MODEL A B`` prints ``score S -> same speaker (threshold T)`` (or
    ``different speakers``) and ``threshold chosen as: ...``; ``embed MODEL FILES...
    -o emb.npy`` writes the accepted files' embeddings and ``emb.ids.txt``;
    ``export --format onnx|torchscript MODEL_DIR`` writes a portable network. Files
    that fail the audio checks, and missing or damaged models, are reported on stderr
    naming the file and the reason.

    Arguments
    ---------
    argv : list of str, optional
        The arguments; ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        Exit status: 0 on success, 1 when anything was refused.

    Example
    -------
    >>> import contextlib
    >>> import numpy as np
    >>> import soundfile as sf
    >>> wav, short = getfixture("tmp_path") / "a.wav", getfixture("tmp_path") / "s.wav"
    >>> sf.write(wav, 0.1 * np.random.default_rng(0).normal(size=8000), 16000)
    >>> main(["verify", str(model_dir), str(wav), str(wav)])
    score 1.0000 -> same speaker (threshold 0.2000)
    threshold chosen as: EER point of 40 trials among training utterances (example)
    0
    >>> sf.write(short, np.full(1600, 0.1), 16000)
    >>> with contextlib.redirect_stderr(sys.stdout):
    ...     main(["verify", str(model_dir), str(wav), str(short)])
    error: .../s.wav: too short (0.10 s, 1600 samples; the minimum is 0.5 s, --min-duration)
    1
    """
    args = _parser().parse_args(argv)
    try:
        if args.command == "export":
            path = export_portable(args.folder, args.format, args.output, args.features)
            print(f"wrote {path}")
            return 0
        limits = AudioLimits(args.min_duration, args.speech_threshold, args.min_speech)
        model, embed = _load(args.model, args.device)
        if args.command == "verify":
            return _verify(args, model, embed, limits)
        return _embed(args, model, embed, limits)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _verify(args, model, embed, limits):
    """Score the two recordings of ``verify``; refuse both bad files, naming each."""
    embeddings, refused = [], []
    for path in (args.enrol, args.test):
        try:
            embeddings.append(_embed_file(model, embed, path, limits))
        except RecordingError as err:
            refused.append(err)
    if refused:
        for err in refused:
            print(f"error: {err}", file=sys.stderr)
        return 1
    score = float(model.mods.scoring.score(embeddings[0][None], embeddings[1][None])[0])
    if args.threshold is None:
        threshold = model.threshold
        source = read_threshold_source(model_folder_of(args.model))
    else:
        threshold, source = args.threshold, "given on the command line (--threshold)"
    verdict = "same speaker" if score > threshold else "different speakers"
    print(f"score {score:.4f} -> {verdict} (threshold {threshold:.4f})")
    print(f"threshold chosen as: {source}")
    return 0


def _embed(args, model, embed, limits):
    """Embed the files of ``embed``; write the accepted ones, list the refused ones."""
    output = Path(args.output)
    if output.suffix != ".npy":
        output = output.with_name(output.name + ".npy")
    rows, accepted, refused = [], [], []
    for path in args.files:
        try:
            rows.append(_embed_file(model, embed, path, limits).numpy())
            accepted.append(path)
        except RecordingError as err:
            refused.append(err)
            print(f"error: {err}", file=sys.stderr)
    if rows:
        embeddings = np.stack(rows).astype(np.float32)
        ids = output.with_suffix(".ids.txt")
        output.parent.mkdir(parents=True, exist_ok=True)
        np.save(output, embeddings)
        ids.write_text("".join(f"{path}\n" for path in accepted), encoding="utf-8")
        print(
            f"wrote {embeddings.shape[0]} x {embeddings.shape[1]} embeddings to {output} "
            f"(files in row order: {ids})"
        )
    if refused:
        written = "the others were written" if rows else "nothing was written"
        print(
            f"error: {len(refused)} of {len(args.files)} files refused; {written}",
            file=sys.stderr,
        )
        return 1
    return 0


def model_folder_of(model_arg):
    """Return the model folder a command-line MODEL names (itself, or an exported file's).

    Arguments
    ---------
    model_arg : str or pathlib.Path
        A model folder, or an ``.onnx`` / ``.pt`` file exported from one.

    Returns
    -------
    pathlib.Path
        The folder.

    Example
    -------
    >>> model_folder_of(model_dir) == model_dir
    True
    """
    path = Path(model_arg)
    return portable_model_folder(path) if path.suffix in PORTABLE_SUFFIXES else path
