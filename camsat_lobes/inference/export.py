"""Write a trained CAMSAT system as a SpeechBrain model folder.

:func:`export_model` writes the folder; :func:`write_readme` (re)writes its README from
what the folder holds. The CAMSAT recipe's verify stage exports one folder per trained
system.

Authors
 * camsat contributors 2026
"""

import io
import json
import re
from pathlib import Path

import numpy as np
import torch
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, TaggedScalar
from ruamel.yaml.tag import Tag
from speechbrain.utils.checkpoints import DEFAULT_SAVE_HOOKS, get_default_hook, torch_save

from camsat_lobes.inference.interface import (
    HPARAMS_FILE,
    CAMSATSpeakerRecognition,
    ScoringStatistics,
    model_folder,
)
from camsat_lobes.inference.runner import PORTABLE_SUFFIXES, describe_portable

__all__ = [
    "EXPORTED_MODULES",
    "THRESHOLD_FILE",
    "export_model",
    "read_threshold_source",
    "write_readme",
]

EXPORTED_MODULES = ("compute_features", "mean_var_norm", "embedding_model")
"""The recipe modules an exported model is built from, in pipeline order."""

THRESHOLD_FILE = "threshold.json"
"""File of a model folder that states the threshold and how it was chosen."""

UNSTATED_SOURCE = "not stated when the model was exported"
"""The threshold source of a folder exported without one."""

FILE_ROLES = {
    HPARAMS_FILE: "the modules, the scoring statistics' shapes and the checkpoint paths",
    "compute_features.ckpt": "parameters of the learnable feature extractor",
    "mean_var_norm.ckpt": "feature normaliser state",
    "embedding_model.ckpt": "trained network parameters",
    "scoring.ckpt": "training mean, threshold and AS-norm cohort (scoring statistics)",
    THRESHOLD_FILE: "the decision threshold and how it was chosen",
}
"""What each file of a model folder holds (portable networks describe themselves)."""


def export_model(
    folder,
    yaml_nodes,
    modules,
    backend,
    threshold,
    sample_rate=16000,
    check=True,
    *,
    threshold_source=None,
):
    r"""Write a trained system as a model folder SpeechBrain's inference interface loads.

    Files: ``hyperparams.yaml`` (self-contained: the three resolved module nodes,
    ``scoring``, ``audio_normalizer``, ``modules``, ``pretrainer``, ``sample_rate`` and
    ``threshold_source``), ``embedding_model.ckpt``, ``mean_var_norm.ckpt`` and
    ``scoring.ckpt`` (as SpeechBrain's Pretrainer reads them; ``compute_features.ckpt``
    too if the feature extractor has parameters), ``threshold.json`` (the threshold and
    its source) and ``README.md``. Load it with
    :class:`~camsat_lobes.inference.CAMSATSpeakerRecognition` (recipe scoring) or
    SpeechBrain's ``SpeakerRecognition`` (plain cosine). Files of these names are
    replaced; a portable network exported from an earlier version of the folder is
    refused by the command line until exported again.

    Arguments
    ---------
    folder : str or pathlib.Path
        The model folder (created if needed).
    yaml_nodes : dict
        Resolved YAML text (``hyperpyyaml.resolve_references`` output, no ``!ref``)
        of the node that built each of ``compute_features``, ``mean_var_norm`` and
        ``embedding_model``: the node alone (``"!new:pkg.Class\n  arg: 1\n"``) or
        under its key (``"embedding_model: !new:pkg.Class\n  arg: 1\n"``).
    modules : dict
        The trained ``compute_features``, ``mean_var_norm`` and ``embedding_model``
        modules (others are ignored; DDP wrappers are removed).
    backend : camsat_lobes.scoring.CosineBackend
        The backend the recipe scored with (training mean, cohort when AS-norm).
    threshold : float
        Decision threshold (accept when the score is above it).
    sample_rate : int
        Sampling rate (Hz) the modules expect.
    check : bool
        Load the written folder on the CPU and check that it embeds a probe waveform as
        ``modules`` do (and builds a network with the same parameter names); raises
        ``ValueError`` otherwise.
    threshold_source : str, optional
        A sentence saying how ``threshold`` was chosen (which trials, labelled how),
        written to ``threshold.json``, ``hyperparams.yaml`` and the README and shown
        by the command line's ``verify``. ``None`` records that it was not stated.

    Returns
    -------
    pathlib.Path
        The absolute path of ``folder``.

    Example
    -------
    >>> import numpy as np
    >>> from speechbrain.lobes.features import Fbank
    >>> from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
    >>> from speechbrain.processing.features import InputNormalization
    >>> from camsat_lobes.scoring import CosineBackend
    >>> nodes = {
    ...     "compute_features": "!new:speechbrain.lobes.features.Fbank\n  n_mels: 80\n",
    ...     "mean_var_norm": "!new:speechbrain.processing.features.InputNormalization\n"
    ...     "  norm_type: sentence\n  std_norm: false\n",
    ...     "embedding_model": "!new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN\n"
    ...     "  input_size: 80\n  channels: [16, 16, 16, 16, 48]\n  lin_neurons: 8\n",
    ... }
    >>> modules = {
    ...     "compute_features": Fbank(n_mels=80),
    ...     "mean_var_norm": InputNormalization(norm_type="sentence", std_norm=False),
    ...     "embedding_model": ECAPA_TDNN(80, channels=[16, 16, 16, 16, 48], lin_neurons=8),
    ... }
    >>> train = np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32)
    >>> backend = CosineBackend.from_training(train, score_norm="as-norm", top_k=5)
    >>> folder = export_model(
    ...     getfixture("tmp_path") / "m", nodes, modules, backend, 0.2,
    ...     threshold_source="EER point of 40 trials among training utterances",
    ... )
    >>> sorted(p.name for p in folder.iterdir())  # doctest: +NORMALIZE_WHITESPACE
    ['README.md', 'embedding_model.ckpt', 'hyperparams.yaml', 'mean_var_norm.ckpt',
     'scoring.ckpt', 'threshold.json']
    >>> json.loads((folder / "threshold.json").read_text())["source"]
    'EER point of 40 trials among training utterances'
    >>> model = CAMSATSpeakerRecognition.from_hparams(folder, run_opts={"device": "cpu"})
    >>> model.mods.scoring
    ScoringStatistics(embedding_dim=8, cohort_size=20, top_k=5, threshold=0.2)
    """
    folder = Path(folder).expanduser().absolute()
    missing = [name for name in EXPORTED_MODULES if name not in yaml_nodes or name not in modules]
    if missing:
        raise ValueError(
            f"yaml_nodes and modules must both give {list(EXPORTED_MODULES)}: {missing} missing"
        )
    if threshold_source is not None and not str(threshold_source).strip():
        raise ValueError("threshold_source is empty: say how the threshold was chosen, or None")
    source = UNSTATED_SOURCE if threshold_source is None else " ".join(threshold_source.split())
    nodes = {name: _module_node(name, yaml_nodes[name]) for name in EXPORTED_MODULES}
    stats = ScoringStatistics.from_backend(backend, threshold)
    folder.mkdir(parents=True, exist_ok=True)

    checkpointed = []
    for name in EXPORTED_MODULES:
        module = _unwrap(modules[name])
        if name == "compute_features" and not any(True for _ in module.parameters()):
            (folder / f"{name}.ckpt").unlink(missing_ok=True)
            continue  # fixed features (buffers only): the YAML node rebuilds them
        _save_checkpoint(module, folder / f"{name}.ckpt")
        checkpointed.append(name)
    _save_checkpoint(stats, folder / "scoring.ckpt")
    checkpointed.append("scoring")

    document = _hparams_document(folder, nodes, stats, int(sample_rate), checkpointed, source)
    stream = io.StringIO()
    yaml = YAML()
    yaml.width = 100
    yaml.dump(document, stream)
    (folder / HPARAMS_FILE).write_text(stream.getvalue(), encoding="utf-8")
    threshold_record = {"threshold": float(stats.threshold), "source": source}
    (folder / THRESHOLD_FILE).write_text(json.dumps(threshold_record, indent=2) + "\n")
    write_readme(folder)
    if check:
        _check_export(folder, modules, sample_rate)
    return folder


def read_threshold_source(folder):
    """Return how the threshold of a model folder was chosen (its ``threshold.json``).

    Arguments
    ---------
    folder : str or pathlib.Path
        A model folder.

    Returns
    -------
    str
        The source sentence; a note when the folder predates ``threshold.json``.

    Example
    -------
    >>> read_threshold_source(model_dir)
    'EER point of 40 trials among training utterances (example)'
    >>> read_threshold_source(getfixture("tmp_path"))
    'not recorded (the folder has no threshold.json)'
    """
    path = Path(folder) / THRESHOLD_FILE
    if not path.is_file():
        return f"not recorded (the folder has no {THRESHOLD_FILE})"
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["source"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is damaged ({type(err).__name__}: {err})") from err


def write_readme(folder):
    """Write a model folder's ``README.md`` from what the folder holds.

    The summary (embedding size, scoring, threshold and its source) comes from
    ``hyperparams.yaml`` and ``threshold.json``; the file list from the folder, with
    the description each portable network (``*.onnx``, ``*.pt``) carries.

    Arguments
    ---------
    folder : str or pathlib.Path
        A model folder written by :func:`export_model`.

    Returns
    -------
    pathlib.Path
        The README's path.

    Example
    -------
    >>> print(write_readme(model_dir).read_text())
    # CAMSAT speaker-verification model
    <BLANKLINE>
    - Embeddings: 8 dimensions, from 16000 Hz mono audio.
    - Scores: cosine after subtracting the mean training embedding; nothing from the test ...
    - Threshold: 0.2000 (same speaker above it); chosen as: EER point of 40 trials among ...
    ...
    - `threshold.json`: the decision threshold and how it was chosen.
    ...
    """
    folder = model_folder(folder)
    hparams = YAML().load((folder / HPARAMS_FILE).read_text(encoding="utf-8"))
    scoring = hparams["scoring"]
    if (folder / THRESHOLD_FILE).is_file():
        threshold = json.loads((folder / THRESHOLD_FILE).read_text(encoding="utf-8"))
        chosen = f"{threshold['threshold']:.4f} (same speaker above it); chosen as: "
    else:
        chosen = "in scoring.ckpt (same speaker above it); chosen as: "
    scores = "cosine after subtracting the mean training embedding"
    if scoring["cohort_size"]:
        scores += (
            f", then AS-norm against {scoring['cohort_size']} training embeddings "
            f"(top {scoring['top_k']})"
        )
    summary = {
        "Embeddings": f"{scoring['embedding_dim']} dimensions, from "
        f"{hparams['sample_rate']} Hz mono audio",
        "Scores": scores + "; nothing from the test recordings enters a score",
        "Threshold": chosen + read_threshold_source(folder),
    }
    usage = [
        "from camsat_lobes.inference import CAMSATSpeakerRecognition",
        f'model = CAMSATSpeakerRecognition.from_hparams(source="{folder}")',
        'score, same_speaker = model.verify_files("a.wav", "b.wav")',
    ]
    shell = [
        f"python -m camsat_lobes.inference verify {folder} a.wav b.wav",
        f"python -m camsat_lobes.inference embed {folder} FILES... -o emb.npy",
        f"python -m camsat_lobes.inference export --format onnx {folder}",
    ]
    files = {name: role for name, role in FILE_ROLES.items() if (folder / name).is_file()}
    for path in sorted(p for p in folder.iterdir() if p.suffix in PORTABLE_SUFFIXES):
        files[path.name] = describe_portable(path)
    lines = ["# CAMSAT speaker-verification model", ""]
    lines += [f"- {key}: {value}." for key, value in summary.items()]
    lines += ["", "```python", *usage, "```", "", "```", *shell, "```", "", "Files:", ""]
    lines += [f"- `{name}`: {role}." for name, role in files.items()]
    lines += [
        "",
        "SpeechBrain's `SpeakerRecognition.from_hparams` loads the folder too, but scores "
        "with a plain cosine and its own threshold.",
    ]
    readme = folder / "README.md"
    readme.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return readme


def _module_node(name, node_text):
    """Return the ruamel node of one resolved module (a ``!new:`` tagged mapping).

    ``node_text`` is the node alone (``!new:pkg.Class`` and its arguments) or a mapping
    holding it under one key (such as ``name: !new:pkg.Class ...``); any indentation.
    """
    if not isinstance(node_text, str):
        raise TypeError(f"the YAML node of {name} must be a string, got {type(node_text)}")
    node = YAML().load(node_text)
    tag = getattr(getattr(node, "tag", None), "value", None)
    if tag is None and isinstance(node, dict):
        if name in node:
            node = node[name]
        elif len(node) == 1:
            node = next(iter(node.values()))
        tag = getattr(getattr(node, "tag", None), "value", None)
    if tag is None or not tag.startswith("!new:"):
        raise ValueError(
            f"the YAML node of {name} must build the module with a !new: tag, got:\n{node_text}"
        )
    _drop_comments(node)
    stream = io.StringIO()
    YAML().dump({name: node}, stream)
    if re.search(r"!(ref|copy)\b", stream.getvalue()):
        raise ValueError(
            f"the YAML node of {name} still holds !ref or !copy references: give it "
            f"resolved (hyperpyyaml.resolve_references), got:\n{node_text}"
        )
    return node


def _drop_comments(node):
    """Remove the comments ruamel keeps with ``node`` (they describe the source file)."""
    comments = getattr(node, "ca", None)
    if comments is not None:
        comments.comment = None
        comments.items.clear()
        comments.end = None
    if isinstance(node, dict):
        for value in node.values():
            _drop_comments(value)
    elif isinstance(node, list):
        for value in node:
            _drop_comments(value)


def _new(cls, **arguments):
    """Return a ``!new:cls`` mapping node."""
    node = CommentedMap(arguments)
    node.yaml_set_ctag(Tag(suffix=f"!new:{cls}"))
    return node


def _ref(target):
    """Return a ``!ref`` scalar node."""
    return TaggedScalar(target, tag="!ref")


def _hparams_document(folder, nodes, stats, sample_rate, checkpointed, source):
    """Build the exported ``hyperparams.yaml`` as a ruamel document."""
    doc = CommentedMap()
    doc["sample_rate"] = sample_rate
    doc["pretrained_path"] = str(folder)
    doc["threshold_source"] = source
    for name in EXPORTED_MODULES:
        doc[name] = nodes[name]
    doc["scoring"] = _new(
        "camsat_lobes.inference.ScoringStatistics",
        embedding_dim=stats.embedding_dim,
        cohort_size=len(stats.cohort),
        top_k=stats.top_k,
    )
    doc["audio_normalizer"] = _new(
        "speechbrain.dataio.preprocess.AudioNormalizer", sample_rate=_ref("<sample_rate>")
    )
    doc["modules"] = CommentedMap(
        (name, _ref(f"<{name}>")) for name in (*EXPORTED_MODULES, "scoring")
    )
    doc["pretrainer"] = _new(
        "speechbrain.utils.parameter_transfer.Pretrainer",
        loadables=CommentedMap((name, _ref(f"<{name}>")) for name in checkpointed),
        paths=CommentedMap((name, _ref(f"<pretrained_path>/{name}.ckpt")) for name in checkpointed),
    )
    doc.yaml_set_start_comment(
        "CAMSAT speaker-verification model written by camsat_lobes.inference.export_model.\n"
        "Load: camsat_lobes.inference.CAMSATSpeakerRecognition.from_hparams(source=<folder>)\n"
        "(speechbrain.inference.speaker.SpeakerRecognition loads it too, without `scoring`)."
    )
    comments = {
        "pretrained_path": "Folder of the checkpoints (CAMSATSpeakerRecognition sets it to "
        "where it loads from).",
        "threshold_source": f"Decision threshold {float(stats.threshold):.6g} (in scoring.ckpt "
        f"and {THRESHOLD_FILE}), chosen as:",
        "compute_features": "The modules, as the recipe built them.",
        "scoring": "Training mean, threshold and AS-norm cohort (cohort_size 0: no AS-norm).",
    }
    for key, text in comments.items():
        doc.yaml_set_comment_before_after_key(key, before=text)
    return doc


def _unwrap(module):
    """Return the module inside a DDP or DataParallel wrapper or a ``torch.compile`` one."""
    wrappers = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
    if isinstance(module, wrappers):
        module = module.module
    return getattr(module, "_orig_mod", module)


def _save_checkpoint(module, path):
    """Save ``module`` in the format its SpeechBrain transfer hook reads back.

    The registered save hook is called unwrapped: SpeechBrain wraps it to run on the
    main process and broadcast, which would wait for the other processes when the
    export itself runs on the main process only.
    """
    hook = get_default_hook(module, DEFAULT_SAVE_HOOKS)
    hook = getattr(hook, "__wrapped__", hook)
    if hook is None or hook is torch_save:
        state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        torch.save(state, path)
    else:
        hook(module, path)


def _check_export(folder, modules, sample_rate):
    """Load the exported folder on the CPU and compare its embeddings with ``modules``'."""
    try:
        model = CAMSATSpeakerRecognition.from_hparams(folder, run_opts={"device": "cpu"})
    except Exception as err:
        raise ValueError(
            f"the model exported to {folder} does not load ({type(err).__name__}: {err}); "
            "check that the YAML nodes build the trained modules"
        ) from err
    exported = model.mods.embedding_model.state_dict()
    given = _unwrap(modules["embedding_model"]).state_dict()
    if set(exported) != set(given):
        raise ValueError(
            "the embedding_model YAML node builds a network with other parameters than the "
            f"trained one: only in the node {sorted(set(exported) - set(given))[:5]}, only "
            f"in the trained network {sorted(set(given) - set(exported))[:5]}"
        )
    probe = torch.from_numpy(
        np.random.default_rng(0).normal(scale=0.1, size=(1, int(sample_rate))).astype(np.float32)
    )
    mods = {name: _unwrap(modules[name]) for name in EXPORTED_MODULES}
    training = {name: module.training for name, module in mods.items()}
    try:
        for module in mods.values():
            module.eval()
        device = next(
            (t.device for m in mods.values() for t in m.state_dict().values()),
            torch.device("cpu"),
        )
        with torch.no_grad():
            wavs, lens = probe.to(device), torch.ones(1, device=device)
            feats = mods["mean_var_norm"](mods["compute_features"](wavs), lens)
            expected = mods["embedding_model"](feats, lens).reshape(1, -1).float().cpu()
            got = model.encode_batch(probe).reshape(1, -1)
    finally:
        for name, module in mods.items():
            module.train(training[name])
    similarity = torch.nn.functional.cosine_similarity(expected, got).item()
    if not similarity > 0.999:
        raise ValueError(
            f"the model exported to {folder} does not reproduce the trained modules' "
            f"embeddings (cosine {similarity:.4f}): check the YAML nodes"
        )
