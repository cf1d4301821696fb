"""Shared fixtures: MiniVox corpora, generated once and cached across test runs.

The corpora live in ``$CAMSAT_CACHE/minivox/<config hash>`` (``CAMSAT_CACHE``
defaults to ``~/.cache/camsat``), so only the first test run pays for them.
"""

import pytest

from camsat_lobes.minivox import MiniVoxConfig, generate_minivox


@pytest.fixture(scope="session")
def tiny_minivox():
    """Root of the tiny MiniVox corpus: 2 train + 2 test speakers x 2 sessions x 2 utterances."""
    return generate_minivox(MiniVoxConfig.tiny())


@pytest.fixture(scope="session")
def small_minivox():
    """Root of the small MiniVox corpus: 6 train + 3 test speakers, 2 sessions each."""
    return generate_minivox(MiniVoxConfig.small())
