"""The recipe's tiny end-to-end run, shared by the integration tests.

``tiny_run`` runs the first row of ``tests/recipes/VoxCeleb.csv`` (SpeechBrain's recipe
listing, with its debug flags) end to end on the small MiniVox corpus, once per test
session; the tests copy what they need from it.
"""

import pytest
from recipe_runs import listed_recipes, recipe_command, run_recipe


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, small_minivox):
    """The first listed recipe run end to end on small MiniVox: (listing row, output folder)."""
    row = listed_recipes()[0]
    out = tmp_path_factory.mktemp("recipe") / "run"
    run_recipe(recipe_command(row, out, small_minivox))
    return row, out
