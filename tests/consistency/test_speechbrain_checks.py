"""SpeechBrain's own consistency checks, applied to this project.

SpeechBrain checks every recipe it merges (its ``tests/consistency``): each top-level
variable of a listed yaml must be used by the recipe script (or by the yaml itself
through ``!ref <var>``), and every module, class and public function must open with a
docstring. Those test modules are not installed with the ``speechbrain`` package, so
this file applies the same rules, as SpeechBrain reads them, to our recipes and
lobes. Two more rules keep the project inside what those readers can parse: the
script never indexes the hyperparameters with a computed key, and a docstring's first
line never holds ``...`` (SpeechBrain's reader skips such lines).
"""

import ast
import csv
import re
from pathlib import Path

import pytest
from speechbrain.utils.run_opts import RunOptions

REPO = Path(__file__).resolve().parents[2]
LISTING = REPO / "tests" / "recipes" / "VoxCeleb.csv"
LISTING_COLUMNS = [
    "Task",
    "Dataset",
    "Script_file",
    "Hparam_file",
    "Data_prep_file",
    "Readme_file",
    "Result_url",
    "HF_repo",
    "test_debug_flags",
    "test_debug_checks",
    "performance",
]
# How SpeechBrain's reader recognises a variable used by a script, besides ["var"].
SCRIPT_ACCESSES = ("hparams.", "modules.", 'attr(self.hparams, "', 'hparams.get("')
CHECKED_FOLDERS = ("camsat_lobes", "recipes", "bench")


def listed_recipes():
    with open(LISTING, newline="") as f:
        return list(csv.DictReader(f))


def yaml_variables(hparams_file):
    """Top-level variables of a yaml that its script must use, as SpeechBrain reads them."""
    variables, referenced = [], set()
    for line in Path(hparams_file).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if ":" in line and not line[0].isspace() and "!!" not in line and "!apply" not in line:
            variables.append(line[: line.index(":")])
        referenced.update(re.findall(r"<([A-Za-z_]\w*)", line) if "!ref" in line else ())
    return [v for v in variables if v not in referenced]


def used_by_script(variable, script):
    return f'["{variable}"]' in script or any(
        access + variable in script for access in SCRIPT_ACCESSES
    )


def run_option_names():
    return {action.dest for action in RunOptions._create_parser()._actions}


@pytest.mark.parametrize("row", listed_recipes(), ids=lambda row: Path(row["Hparam_file"]).name)
def test_every_yaml_variable_is_used_by_its_script(row):
    script = (REPO / row["Script_file"]).read_text()
    unused = [
        variable
        for variable in yaml_variables(REPO / row["Hparam_file"])
        if not used_by_script(variable, script) and variable not in run_option_names()
    ]
    assert not unused, f"{row['Hparam_file']}: unused by {row['Script_file']}: {unused}"


@pytest.mark.parametrize("row", listed_recipes(), ids=lambda row: Path(row["Hparam_file"]).name)
def test_script_never_indexes_hyperparameters_with_a_computed_key(row):
    """SpeechBrain's reader turns ``[...{}...]`` lines into patterns: they must compile."""
    for number, line in enumerate((REPO / row["Script_file"]).read_text().splitlines(), 1):
        assert not re.search(r"hparams\[[^\"'\]]", line), f"line {number}: {line.strip()}"
        shape = re.search(r"\[.(.*){}(.*).\]", line)
        if shape is not None:
            re.compile(shape.group(1) + ".*" + shape.group(2))  # raises re.error if not


def test_recipe_listing_has_speechbrains_columns():
    with open(LISTING, newline="") as f:
        assert next(csv.reader(f)) == LISTING_COLUMNS


def python_files():
    for folder in CHECKED_FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            if "__" not in str(path.relative_to(REPO)) and "results" not in path.parts:
                yield path


def missing_docstrings(path):
    tree = ast.parse(path.read_text())
    if ast.get_docstring(tree) is None:
        yield "the module"
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            if isinstance(node, ast.ClassDef) or not node.name.startswith("_"):
                doc = ast.get_docstring(node, clean=False)
                if doc is None or "..." in doc.strip().splitlines()[0]:
                    yield f"{node.name} (line {node.lineno})"


@pytest.mark.parametrize("path", list(python_files()), ids=lambda p: str(p.relative_to(REPO)))
def test_every_module_class_and_function_opens_with_a_docstring(path):
    missing = list(missing_docstrings(path))
    assert not missing, f"{path.relative_to(REPO)}: no docstring for {missing}"


@pytest.mark.parametrize("path", list(python_files()), ids=lambda p: str(p.relative_to(REPO)))
def test_docstrings_use_speechbrains_section_names(path):
    text = path.read_text()
    assert not re.search(r"^\s*Parameters\n\s*-{10}$", text, flags=re.M), (
        f"{path.relative_to(REPO)}: SpeechBrain names the section 'Arguments'"
    )
