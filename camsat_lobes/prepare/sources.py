"""What a preparation reads: one VoxCeleb-layout folder, or VoxCeleb1 and VoxCeleb2 apart.

Two ways to give the corpus:

- ``data_folder``: one folder ``<root>/wav/<speaker>/<session>/<utterance>.wav`` with its
  trial list ``<root>/trials.txt`` (MiniVox, or any corpus laid out so); the speakers of
  the list are the test set and every other speaker trains.
- ``voxceleb1_folder`` (``<vox1>/wav/`` with all 1,251 speakers, and the trial lists)
  and ``voxceleb2_folder`` (``<vox2>/dev/aac/*.m4a`` as downloaded, or ``dev/wav/``):
  the field's protocol. ``train_on`` says which corpora train (VoxCeleb2 dev by
  default; ``voxceleb1`` is VoxCeleb1 dev, the VoxCeleb1 speakers that no trial list
  names) and ``trial_lists`` which lists are scored (O, E and H by default).

Authors
 * camsat contributors 2026
"""

import dataclasses
from pathlib import Path

from camsat_lobes.prepare.corpus import (
    LAYOUT,
    _audio_root,
    _voxceleb1_audio_root,
    _voxceleb2_audio_root,
)
from camsat_lobes.prepare.trials import DEFAULT_TRIAL_LISTS, _check_list_names

__all__ = ["TRAIN_CORPORA"]

TRAIN_CORPORA = ("voxceleb1", "voxceleb2")
SINGLE_LIST = "voxceleb"  # the name of a single folder's trial list in trial_lists.json
DEVELOPMENT_LIST = "development"  # the name of a VoxCeleb development split's list


@dataclasses.dataclass
class _Sources:
    """The resolved folders of a preparation.

    Arguments
    ---------
    data_folder : pathlib.Path or None
        The single VoxCeleb-layout folder, or None for VoxCeleb1 and VoxCeleb2 apart.
    roots : dict
        Corpus name (None for the single folder) -> audio folder.
    train_on : tuple of str
        The corpora that train (empty for the single folder).
    folders : dict
        Corpus name -> the folder given for it (VoxCeleb1 and VoxCeleb2 only).
    """

    data_folder: Path | None
    roots: dict
    train_on: tuple = ()
    folders: dict = dataclasses.field(default_factory=dict)

    @property
    def single(self):
        """Whether this is one VoxCeleb-layout folder (with ``trials.txt``)."""
        return self.data_folder is not None


def _resolve(data_folder, trial_file, voxceleb1_folder, voxceleb2_folder, train_on, trial_lists):
    """Check how the corpus is given and find its audio folders; return the :class:`Sources`.

    Raises
    ------
    ValueError
        When the arguments mix the two ways of giving the corpus or name no corpus.
    FileNotFoundError
        When a folder or its audio folder is missing.
    """
    voxceleb = voxceleb1_folder is not None or voxceleb2_folder is not None
    if data_folder is not None and voxceleb:
        raise ValueError(
            "give either data_folder (one VoxCeleb-layout folder with trials.txt) or "
            "voxceleb1_folder and voxceleb2_folder (the field's protocol), not both"
        )
    if not voxceleb:
        if data_folder is None:
            raise ValueError(
                "no corpus given: pass data_folder (a VoxCeleb-layout folder "
                f"wav/{LAYOUT}.wav with trials.txt), or voxceleb1_folder and voxceleb2_folder"
            )
        for name, value in (("train_on", train_on), ("trial_lists", trial_lists)):
            if value is not None:
                raise ValueError(
                    f"{name} applies to voxceleb1_folder/voxceleb2_folder, not to one "
                    f"data_folder (its trial list is trials.txt or trial_file): remove {name}"
                )
        data_folder = _resolved(data_folder)
        return _Sources(data_folder, {None: _audio_root(data_folder)})
    if trial_file is not None:
        raise ValueError(
            "trial_file applies to one data_folder; with voxceleb1_folder give the lists as "
            f"trial_lists, e.g. {DEFAULT_TRIAL_LISTS}"
        )
    train_on = corpora_to_train(train_on)
    if voxceleb1_folder is None:
        raise ValueError(
            "voxceleb1_folder is needed: its wav/ folder holds the audio that the trial "
            "lists score, and the lists themselves"
        )
    folders = {"voxceleb1": _resolved(voxceleb1_folder)}
    roots = {"voxceleb1": _voxceleb1_audio_root(folders["voxceleb1"])}
    if "voxceleb2" in train_on:
        if voxceleb2_folder is None:
            raise ValueError(
                f"train_on={list(train_on)} trains on VoxCeleb2 dev, but no voxceleb2_folder "
                "was given: pass the VoxCeleb2 root (dev/aac/ or dev/wav/), or "
                "train_on='voxceleb1' (with trial_lists={'O': 'veri_test2.txt'})"
            )
        folders["voxceleb2"] = _resolved(voxceleb2_folder)
        roots["voxceleb2"] = _voxceleb2_audio_root(folders["voxceleb2"])
    return _Sources(None, roots, train_on, folders)


def corpora_to_train(train_on):
    """Return ``train_on`` as a sorted tuple of corpus names (``voxceleb2`` when None).

    Example
    -------
    >>> corpora_to_train(None), corpora_to_train(["voxceleb2", "voxceleb1"])
    (('voxceleb2',), ('voxceleb1', 'voxceleb2'))
    """
    if train_on is None:
        return ("voxceleb2",)
    names = (train_on,) if isinstance(train_on, str) else tuple(train_on)
    unknown = [name for name in names if name not in TRAIN_CORPORA]
    if unknown or not names:
        raise ValueError(
            f"train_on={train_on!r}: name one or both of {', '.join(TRAIN_CORPORA)} "
            "(voxceleb2: VoxCeleb2 dev; voxceleb1: VoxCeleb1 dev, the speakers no trial "
            "list names)"
        )
    return tuple(sorted(set(names)))


def _trial_path(data_folder, trial_file):
    """Return the trial list of a single folder, raising when there is none."""
    if trial_file is None:
        default = data_folder / "trials.txt"
        if default.is_file():
            return default
        raise ValueError(
            f"{data_folder} holds no trial list (no trials.txt, and no trial_file was given): "
            "speaker verification needs one to score the system. Put one at "
            f"{default} (lines '<1|0> {LAYOUT}.wav {LAYOUT}.wav', paths relative to "
            f"{data_folder / 'wav'}; e.g. VoxCeleb1's veri_test2.txt) or pass trial_file"
        )
    path = _resolved(trial_file)
    if not path.is_file():
        raise FileNotFoundError(f"trial file {path} does not exist")
    return path


def _trial_list_files(voxceleb1_folder, trial_lists):
    """Return list name -> file of the VoxCeleb1 trial lists, raising on a missing one.

    Relative paths are relative to ``voxceleb1_folder``; None gives
    :data:`~camsat_lobes.prepare.trials.DEFAULT_TRIAL_LISTS`.
    """
    trial_lists = DEFAULT_TRIAL_LISTS if trial_lists is None else trial_lists
    _check_list_names(trial_lists)
    files = {
        name: _resolved(voxceleb1_folder / Path(path).expanduser())
        for name, path in trial_lists.items()
    }
    missing = {name: path for name, path in files.items() if not path.is_file()}
    if missing:
        shown = ", ".join(f"{name}: {path}" for name, path in missing.items())
        have = {name: trial_lists[name] for name in files if name not in missing}
        raise FileNotFoundError(
            f"trial list{'s' * (len(missing) > 1)} not found ({shown}): put the VoxCeleb1 "
            f"lists (veri_test2.txt, list_test_all2.txt, list_test_hard2.txt) in "
            f"{voxceleb1_folder}, or pass trial_lists with the lists you have"
            + (f", e.g. trial_lists={have}" if have else "")
        )
    return files


def _options(
    sources,
    trial_files,
    seg_duration,
    min_duration,
    sample_rate,
    silence_threshold,
    development_speakers,
):
    """Return the options a preparation depends on, as recorded in ``preparation.json``.

    ``development_speakers`` is recorded only when set, so that the records of
    ordinary preparations stay as they were.
    """
    if sources.single:
        where = {
            "data_folder": str(sources.data_folder),
            "trial_file": str(trial_files[SINGLE_LIST]),
        }
    else:
        where = {
            **{f"{name}_folder": str(folder) for name, folder in sources.folders.items()},
            "train_on": list(sources.train_on),
            "trial_lists": {name: str(path) for name, path in trial_files.items()},
        }
    recorded = {
        **where,
        "seg_duration": seg_duration,
        "min_duration": min_duration,
        "sample_rate": sample_rate,
        "silence_threshold": silence_threshold,
    }
    if development_speakers:
        recorded["development_speakers"] = development_speakers
    return recorded


def _resolved(path):
    """Return ``path`` as an absolute path with ``~`` expanded and links resolved."""
    return Path(path).expanduser().resolve()
