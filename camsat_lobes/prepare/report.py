"""The preparation report: each skipped, converted or ignored file and what became of it.

``prepare_report.json`` holds the options, the audio folder(s), a summary table and
one entry per file with a problem (``file``, ``problem``, ``action``);
``prepare_report.md`` shows the same as markdown tables. Files converted from m4a/aac
with ffmpeg are counted, not listed: only those ffmpeg failed on get an entry, with
ffmpeg's reason.

Authors
 * camsat contributors 2026
"""

import logging
import re
from collections import Counter

from camsat_lobes.files import write_json, write_text

logger = logging.getLogger(__name__)

__all__ = []


def _note_dropped_trials(report, dropped, labels):
    """Add to each skipped file's report entry how many trials it took down.

    ``dropped`` holds the dropped trials of every list (list name -> trials), and
    ``labels`` maps utterance IDs to report labels.
    """
    counts = Counter(
        labels[utt_id]
        for trials in dropped.values()
        for _, *pair in trials
        for utt_id in set(pair)
        if labels.get(utt_id) in report
    )
    for label, count in counts.items():
        dropped_text = f"{count} trial{'s' * (count != 1)} dropped"
        report[label]["action"] = "; ".join(filter(None, [report[label]["action"], dropped_text]))


def _summary(audio_files, utterances, report, split, converted_with_ffmpeg=0):
    """Count what the preparation kept, converted, skipped and dropped (the report's table).

    With several trial lists, ``trials``, ``target_trials`` and ``trials_dropped`` add
    them up and ``trials_<name>`` gives each list's count; ``converted_with_ffmpeg``
    appears when container files (m4a) were converted.
    """
    train, test = split["train"], split["test"]
    kept = [trial for trials in split["trials"].values() for trial in trials]
    used = {row["ID"] for row in train} | {row["ID"] for row in test}
    counts = {
        "audio_files": audio_files,
        "usable_files": len(utterances),
        "converted": sum(entry["action"].startswith("converted") for entry in report.values()),
    }
    if converted_with_ffmpeg:
        counts["converted_with_ffmpeg"] = converted_with_ffmpeg
    counts.update(
        {
            "skipped": sum(entry["action"].startswith("skipped") for entry in report.values()),
            "ignored_non_audio": sum(entry["action"] == "ignored" for entry in report.values()),
            "problems": dict(Counter(_problem_kind(entry["problem"]) for entry in report.values())),
            "train_utterances": len(train),
            "train_speakers": len({row["spk_id"] for row in train}),
            "train_segments": len(split["segments"]),
            "train_hours": round(sum(row["duration"] for row in train) / 3600, 3),
            "test_utterances": len(test),
            "test_speakers": len({row["spk_id"] for row in test}),
            "trials": len(kept),
            "target_trials": sum(label for label, _, _ in kept),
            "trials_dropped": sum(len(trials) for trials in split["dropped"].values()),
            "unused_test_speaker_utterances": len(set(utterances) - used),
        }
    )
    if len(split["trials"]) > 1:
        for name, trials in split["trials"].items():
            counts[f"trials_{name}"] = len(trials)
    return counts


def _write_report(paths, options, audio_roots, counts, entries, trial_files):
    """Write ``prepare_report.json`` and its markdown table, ``prepare_report.md``.

    ``audio_roots`` is one folder (a single VoxCeleb-layout folder) or a mapping of
    corpus name to folder; ``trial_files`` maps list names to their files.
    """
    if isinstance(audio_roots, dict):
        where = {"audio_roots": {name: str(root) for name, root in audio_roots.items()}}
        folders = ", ".join(f"{name} `{root}`" for name, root in audio_roots.items())
        lists = ", ".join(f"{name} `{path}`" for name, path in trial_files.items())
        header = f"Audio folders: {folders}; trial lists: {lists}."
    else:
        where = {"audio_root": str(audio_roots)}
        header = f"Audio folder: `{audio_roots}`; trial list: `{options['trial_file']}`."
    write_json(
        paths["report_json"], {"options": options, **where, "summary": counts, "files": entries}
    )
    lines = [
        "# Data preparation report",
        "",
        header,
        "",
        "| quantity | value |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in counts.items() if key != "problems"),
        f"| problems | {', '.join(f'{n} {kind}' for kind, n in counts['problems'].items())} |",
        "",
        f"## Files with a problem ({len(entries)})",
        "",
    ]
    if entries:
        lines += ["| file | problem | action |", "|---|---|---|"]
        lines += [
            "| " + " | ".join(_cell(entry[key]) for key in ("file", "problem", "action")) + " |"
            for entry in entries
        ]
    else:
        lines.append("None.")
    write_text(paths["report_md"], "\n".join(lines) + "\n")


def _log_summary(counts, report_md):
    """Log the sizes of the prepared sets, and a warning naming the report if files were skipped."""
    logger.info(
        "Prepared %d training utterances (%.2f h, %d speakers, %d segments), "
        "%d test utterances (%d speakers), %d trials",
        counts["train_utterances"],
        counts["train_hours"],
        counts["train_speakers"],
        counts["train_segments"],
        counts["test_utterances"],
        counts["test_speakers"],
        counts["trials"],
    )
    if counts["problems"]:
        kinds = ", ".join(f"{count} {kind}" for kind, count in counts["problems"].items())
        logger.warning(
            "%d files skipped, %d converted, %d trials dropped (%s): see %s",
            counts["skipped"],
            counts["converted"],
            counts["trials_dropped"],
            kinds,
            report_md,
        )


def _problem_kind(problem):
    """Short category of a problem text, numbers blanked ('sample rate N Hz')."""
    return re.sub(r"\d+(\.\d+)?", "N", problem.split(" (")[0].split(":")[0])


def _by_file(entry):
    """Sort key of report entries: the file path."""
    return entry["file"]


def _cell(text):
    """Escape ``|`` for a markdown table cell."""
    return str(text).replace("|", "\\|")
