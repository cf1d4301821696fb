"""What each package exports carries a runnable example; everything else a docstring.

The exports are the names in a package's ``__all__`` (``camsat_lobes.clustering``,
``camsat_lobes.pipeline``, ...) and the public classes and functions of the modules
that are not packages; a stage function of the pipeline operates on a whole run and
is exercised by the integration tests instead.
"""

import importlib
import inspect
import pkgutil

import pytest

import camsat_lobes

#: Modules whose functions are the pipeline's stages and study runners (a whole run each).
RUN_LEVEL_MODULES = ("camsat_lobes.pipeline.", "camsat_lobes.studies")


def public_objects():
    for info in pkgutil.walk_packages(camsat_lobes.__path__, prefix="camsat_lobes."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        module = importlib.import_module(info.name)
        if info.ispkg:
            names = getattr(module, "__all__", [])
        elif info.name.startswith(RUN_LEVEL_MODULES):
            continue
        else:
            names = [name for name in vars(module) if not name.startswith("_")]
        for name in names:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if info.ispkg or obj.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", obj


@pytest.mark.parametrize(
    "name, obj", list(public_objects()), ids=lambda x: x if isinstance(x, str) else ""
)
def test_public_object_has_numpy_docstring_with_example(name, obj):
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{name} has no docstring"
    assert "Example" in doc and ">>>" in doc, f"{name} needs an Example section with >>> lines"
