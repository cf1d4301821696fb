"""New voices for Kokoro-82M: seeded blends of its five style packs plus a personal offset.

A speaker is a Dirichlet(alpha) mixture of the five packs (alpha = 0.3 leans each
voice on one or two packs) plus a Gaussian offset of ``offset_scale`` times the
between-pack standard deviation of each style dimension. Plain blends sound too
alike; much larger offsets make speakers separable by spectral colour alone. The
offset is one 256-d direction shared by all rows of the table, so a speaker keeps
its identity across sentence lengths.

Authors
 * camsat contributors 2026
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["SpeakerVoice", "sample_voice"]


@dataclass(frozen=True)
class SpeakerVoice:
    """The style of one synthetic speaker.

    Arguments
    ---------
    weights : tuple of float
        Blend weights of the style packs (they sum to 1).
    offset : tuple of float
        Offset of each style dimension, in between-pack standard deviations.

    Example
    -------
    >>> voice = SpeakerVoice(weights=(1.0, 0.0), offset=(0.0,) * 3)
    >>> packs = np.stack([np.ones((4, 3)), np.zeros((4, 3))])
    >>> voice.style_table(packs)[0].tolist()
    [1.0, 1.0, 1.0]
    """

    weights: tuple
    offset: tuple

    def style_table(self, packs):
        """Return this voice's style table from the packs (shape ``(P, rows, dims)``).

        Example
        -------
        >>> packs = np.stack([np.zeros((2, 2)), np.full((2, 2), 2.0)])
        >>> SpeakerVoice((0.5, 0.5), (1.0, 0.0)).style_table(packs).tolist()
        [[2.0, 1.0], [2.0, 1.0]]
        """
        weights = np.asarray(self.weights, np.float64)
        blend = np.tensordot(weights, packs.astype(np.float64), axes=1)
        spread = packs.astype(np.float64).std(axis=0)
        return (blend + np.asarray(self.offset) * spread).astype(np.float32)


def sample_voice(rng, num_packs, num_dims, alpha=0.3, offset_scale=1.0):
    """Draw a new voice.

    Arguments
    ---------
    rng : numpy.random.Generator
        Source of the draw (one generator per speaker).
    num_packs : int
        Number of style packs to blend.
    num_dims : int
        Size of a style vector (256 for Kokoro).
    alpha : float
        Dirichlet concentration of the blend weights.
    offset_scale : float
        Standard deviation of the offset, in between-pack standard deviations.

    Returns
    -------
    SpeakerVoice

    Example
    -------
    >>> voice = sample_voice(np.random.default_rng(0), 5, 256)
    >>> round(sum(voice.weights), 6), len(voice.offset)
    (1.0, 256)
    """
    weights = rng.dirichlet(np.full(num_packs, alpha))
    offset = rng.normal(0.0, offset_scale, num_dims)
    return SpeakerVoice(weights=tuple(map(float, weights)), offset=tuple(map(float, offset)))
