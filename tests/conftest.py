"""Shared fixtures: MiniVox corpora, generated once and cached across test runs.

The corpora live in ``$CAMSAT_CACHE/minivox/<config hash>`` (``CAMSAT_CACHE``
defaults to ``~/.cache/camsat``), so only the first test run pays for them.
``one_torch_thread`` runs a test on one torch thread (a module of tiny models opts in
with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``).
"""

import pytest
import torch

from camsat_lobes.minivox import MiniVoxConfig, generate_minivox


@pytest.fixture(scope="session")
def tiny_minivox():
    """Root of the tiny MiniVox corpus: 2 train + 2 test speakers x 2 sessions x 2 utterances."""
    return generate_minivox(MiniVoxConfig.tiny())


@pytest.fixture(scope="session")
def small_minivox():
    """Root of the small MiniVox corpus: 6 train + 3 test speakers, 2 sessions each."""
    return generate_minivox(MiniVoxConfig.small())


@pytest.fixture
def one_torch_thread():
    """Tiny models run fastest on one thread, above all on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def voxceleb_fixture(tmp_path_factory, small_minivox):
    """Root of a tiny corpus shaped like VoxCeleb1, VoxCeleb2 (m4a), MUSAN and RIRS_NOISES.

    Written by ``tests/fixtures/voxceleb.py`` from the small MiniVox corpus, under
    ``$CAMSAT_CACHE/voxceleb_fixture`` when ``CAMSAT_CACHE`` is set (reused by later
    runs), else in a temporary folder.
    """
    import importlib.util
    import os
    from pathlib import Path

    path = Path(__file__).parent / "fixtures" / "voxceleb.py"
    spec = importlib.util.spec_from_file_location("camsat_tests_voxceleb_fixture", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cache = os.environ.get("CAMSAT_CACHE")
    if cache:
        out = Path(cache) / "voxceleb_fixture" / f"v{module.VERSION}-{Path(small_minivox).name}"
    else:
        out = tmp_path_factory.mktemp("voxceleb_fixture")
    return module.write_voxceleb_fixture(out, minivox_root=small_minivox)
