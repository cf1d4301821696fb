"""The recipe's hyperparameters: loading, reloading with overrides, and their text.

Every object of a run is built by the recipe yaml. A stage that needs objects made for
one system (its speaker network, checkpointer, epoch counter and train log, which
depend on the system's folder and number of classes) loads the same yaml again with
that system's overrides (:meth:`RecipeHparams.load`). The resolved text of each
top-level key (:meth:`RecipeHparams.text`) is what the stage records compare: a stage
is done again when the text of a key it depends on changed.

Authors
 * camsat contributors 2026
"""

import io
import re
from pathlib import Path

import yaml
from hyperpyyaml import load_hyperpyyaml, resolve_references
from ruamel.yaml import YAML

__all__ = ["RecipeHparams", "recipe_keys_help"]


class RecipeHparams:
    r"""A recipe yaml with its command-line overrides.

    Arguments
    ---------
    hparams_file : str or pathlib.Path
        The recipe yaml.
    overrides : str or dict, optional
        Overrides in YAML (as ``speechbrain.parse_arguments`` returns them) or a dict.

    Example
    -------
    >>> path = getfixture("tmp_path") / "recipe.yaml"
    >>> _ = path.write_text("n_classes: 2\nsize: !ref <n_classes> * 3\n")
    >>> recipe = RecipeHparams(path, "n_classes: 4")
    >>> recipe.load()["size"], recipe.load(n_classes=5)["size"]
    (12, 15)
    >>> recipe.text("size")
    'size: 12\n'
    """

    def __init__(self, hparams_file, overrides=None):
        self.file = Path(hparams_file)
        if isinstance(overrides, str):
            overrides = yaml.safe_load(overrides) or {}
        self.overrides = dict(overrides or {})
        self._nodes = None

    def with_overrides(self, **extra):
        """Return the same recipe with more overrides.

        Arguments
        ---------
        **extra
            Keys to override (added to, or replacing, the current overrides).

        Returns
        -------
        RecipeHparams
            A new object; this one is unchanged.
        """
        return RecipeHparams(self.file, {**self.overrides, **extra})

    def load(self, **extra):
        """Build the objects of the recipe, with ``extra`` overrides on top.

        Arguments
        ---------
        **extra
            Keys to override for this load only.

        Returns
        -------
        dict
            The loaded hyperparameters.
        """
        with open(self.file, encoding="utf-8") as stream:
            return load_hyperpyyaml(stream, {**self.overrides, **extra})

    def resolved(self):
        """Return the recipe's text with every reference resolved (no object is built)."""
        with open(self.file, encoding="utf-8") as stream:
            return resolve_references(stream, self.overrides).getvalue()

    def text(self, key):
        """Return the resolved YAML text of one top-level key ('' when it is absent).

        Arguments
        ---------
        key : str
            A top-level key of the recipe, or a dotted path into it (``systems.camsat``).

        Returns
        -------
        str
            The key and its resolved value as YAML, comments left out.
        """
        if self._nodes is None:
            self._nodes = YAML().load(self.resolved())
        node = self._nodes
        for part in key.split("."):
            if not hasattr(node, "get") or part not in node:
                return ""
            node = node[part]
        stream = io.StringIO()
        YAML().dump({key.split(".")[-1]: _without_comments(node)}, stream)
        return stream.getvalue()

    def settings(self, key):
        r"""Return the resolved settings under one key, flattened: dotted path -> value text.

        A stage record compares these, so that a rerun can name the settings that
        changed (``encoder.compute_features.hop_length``) rather than a whole key.

        Arguments
        ---------
        key : str
            A top-level key of the recipe, or a dotted path into it.

        Returns
        -------
        dict
            Path of every leaf value (relative to ``key``) -> the value as text, and
            path of every tagged node (``!new:...``) -> its tag (``tag`` for the key's own).
            A choice by name (``!apply:operator.getitem [alternatives, name]``) records
            the chosen alternative only.

        Example
        -------
        >>> path = getfixture("tmp_path") / "recipe.yaml"
        >>> _ = path.write_text("hop: 20\nfeat: !new:collections.Counter\n    hop: !ref <hop>\n")
        >>> RecipeHparams(path).settings("feat")
        {'tag': '!new:collections.Counter', 'hop': '20'}
        """
        self.text(key)  # parses the resolved text once
        node = self._nodes
        for part in key.split("."):
            if not hasattr(node, "get") or part not in node:
                return {}
            node = node[part]
        return {path or "tag": text for path, text in _flatten(node, "")}


CHOICE_TAG = "!apply:operator.getitem"


def _chosen(node):
    """Return the entry a choice by name selects (``!apply:operator.getitem [dict, key]``).

    A recipe picks one of several alternatives by name (a margin loss, a regularisation);
    only the chosen one is a setting of what a stage computes.
    """
    while getattr(getattr(node, "tag", None), "value", None) == CHOICE_TAG and len(node) == 2:
        options, key = _chosen(node[0]), node[1]
        if not isinstance(options, dict) or key not in options:
            break
        node = options[key]
    return node


def _flatten(node, path):
    """Yield ``(path, text)`` for every tag and leaf value under a round-trip YAML node."""
    node = _chosen(node)
    tag = getattr(getattr(node, "tag", None), "value", None)
    if tag and tag.startswith("!"):
        yield path, tag
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _flatten(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        if all(not isinstance(item, dict | list) for item in node):
            yield path, str(list(node))
        else:
            for index, item in enumerate(node):
                yield from _flatten(item, f"{path}[{index}]")
    elif not (tag and tag.startswith("!") and node in ("", None)):
        yield path, str(node)


def _without_comments(node):
    """Drop the comments of a round-trip YAML node (they are not options)."""
    if hasattr(node, "ca"):
        node.ca.items.clear()
        node.ca.comment = None
    if isinstance(node, dict):
        for value in node.values():
            _without_comments(value)
    elif isinstance(node, list):
        for value in node:
            _without_comments(value)
    return node


def recipe_keys_help(hparams_file):
    r"""List the top-level keys of a recipe yaml with their comments, for ``--help``.

    A key's help is its end-of-line comment, else the comment block just above it.

    Arguments
    ---------
    hparams_file : str or pathlib.Path
        The recipe yaml.

    Returns
    -------
    str
        One ``--key=value  comment`` line per key (keys starting with ``__`` are left out).

    Example
    -------
    >>> path = getfixture("tmp_path") / "recipe.yaml"
    >>> _ = path.write_text("# Training epochs.\nepochs: 3\nlr: 0.1  # learning rate\n")
    >>> print(recipe_keys_help(path).split("\n", 1)[1])
      --epochs=3                                  Training epochs.
      --lr=0.1                                    learning rate
    """
    lines = [f"Recipe keys of {hparams_file} (override any of them as --key=value):"]
    above = []
    for line in Path(hparams_file).read_text().splitlines():
        if line.startswith("#"):
            above.append(line.lstrip("# ").strip())
            continue
        match = re.match(r"^([A-Za-z_]\w*):\s*([^#]*?)\s*(?:#\s*(.*))?$", line)
        if match and not match[1].startswith("__"):
            key, value, comment = match[1], match[2] or "...", match[3]
            text = comment or " ".join(part for part in above if part)
            lines.append(f"  --{key}={value}".ljust(42) + f"  {text}".rstrip())
        if not line.startswith(" "):
            above = []
    return "\n".join(lines)
