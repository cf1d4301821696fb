"""Every public class and function of the package carries a runnable example."""

import importlib
import inspect
import pkgutil

import pytest

import camsat_lobes


def public_objects():
    for info in pkgutil.walk_packages(camsat_lobes.__path__, prefix="camsat_lobes."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if obj.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", obj


@pytest.mark.parametrize(
    "name, obj", list(public_objects()), ids=lambda x: x if isinstance(x, str) else ""
)
def test_public_object_has_numpy_docstring_with_example(name, obj):
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{name} has no docstring"
    assert "Example" in doc and ">>>" in doc, f"{name} needs an Example section with >>> lines"
