"""Data preparation for VoxCeleb-layout corpora: one folder (MiniVox), or VoxCeleb1 and VoxCeleb2.

One folder is ``<root>/wav/<speaker>/<session>/<utterance>.wav`` with a trial list
``<root>/trials.txt`` (lines ``1 spk/sess/utt.wav spk/sess/utt.wav``): the speakers of
the trial list are the test speakers, every other speaker trains. The field's protocol
gives the corpora apart: VoxCeleb2 dev trains (``<vox2>/dev/aac/<spk>/<video>/<utt>.m4a``,
converted to wav with ffmpeg in parallel, or ``<vox2>/dev/wav/``) and the cleaned
VoxCeleb1 lists O, E and H (``veri_test2.txt``, ``list_test_all2.txt``,
``list_test_hard2.txt`` in ``<vox1>/``) are scored over ``<vox1>/wav/``; a training set
that shares a speaker with any list is refused before any audio file is opened.

Every audio file is checked (see :mod:`camsat_lobes.audio_checks`): files at another
sample rate or with several channels are converted into ``<save_folder>/converted/``,
files that cannot be used are skipped, and each file's fate is written to
``prepare_report.json`` and ``prepare_report.md``. A trial that names a skipped file is
dropped and counted. The training utterances are listed whole (``train_utts.csv``) and
cut into fixed-length segments (``train.csv``) like SpeechBrain's VoxCeleb recipe.

A corpus that cannot give a verification experiment stops the preparation with an
error that names the cause, before the audio is checked where the file list shows it
(no trial list, a trial list without target or without non-target trials, a trial
naming a file absent from the corpus, fewer than 2 training speakers, a training
speaker named by a trial list) and right after the report is written where only the
audio checks show it.

``preparation.json`` (written last) records the options and a digest of the corpus;
:func:`preparation_differences` compares it with a data folder, so a rerun into the
same folder redoes the work when the corpus or an option changed.

Manifests (``wav`` holds absolute paths, ``start``/``stop`` are in samples and
``duration`` in seconds):

- ``train_utts.csv`` and ``test.csv``: ID, duration, wav, start, stop, spk_id, session
- ``train.csv``: ID, duration, wav, start, stop, spk_id, utt_id
- ``trials.csv`` (one folder) or ``trials_<name>.csv`` (one per VoxCeleb list):
  label, enrol_id, test_id
- ``trial_lists.json``: list name -> ``{"file": <CSV name>, "trials": n, "targets": n}``

An utterance ID is ``<speaker>--<session>--<utterance stem>`` (unique across VoxCeleb1
and VoxCeleb2, whose speaker IDs never overlap). ``spk_id`` is there to score results;
no self-supervised stage may read it.

Modules: :mod:`~camsat_lobes.prepare.sources` (what is read),
:mod:`~camsat_lobes.prepare.corpus` (listing, converting, checking audio),
:mod:`~camsat_lobes.prepare.trials` (trial lists), :mod:`~camsat_lobes.prepare.split`
(training/test/development splits, segments), :mod:`~camsat_lobes.prepare.report`,
:mod:`~camsat_lobes.prepare.record` and :mod:`~camsat_lobes.prepare.pipeline`
(:func:`prepare_voxceleb`).

Authors
 * camsat contributors 2026
"""

from camsat_lobes.prepare.corpus import utterance_id
from camsat_lobes.prepare.pipeline import prepare_voxceleb
from camsat_lobes.prepare.record import preparation_differences, preparation_is_current
from camsat_lobes.prepare.sources import TRAIN_CORPORA
from camsat_lobes.prepare.split import development_speaker_draw, development_trials, segment_rows
from camsat_lobes.prepare.trials import DEFAULT_TRIAL_LISTS, read_trial_list

__all__ = [
    "DEFAULT_TRIAL_LISTS",
    "TRAIN_CORPORA",
    "development_speaker_draw",
    "development_trials",
    "preparation_differences",
    "preparation_is_current",
    "prepare_voxceleb",
    "read_trial_list",
    "segment_rows",
    "utterance_id",
]
