"""Seeded English sentences built from word lists and clause templates (no downloads).

A sentence is a chain of short clauses (``"the old neighbour carried the heavy
box"``, ``"we should visit the market tomorrow"``...) joined by connectives until it
reaches the requested number of words, so that its spoken length can be planned.

Authors
 * camsat contributors 2026
"""

__all__ = ["make_sentence"]

NAMES = """Anna Ben Clara David Emma Frank Grace Henry Iris Jack Laura Martin Nora Oscar
Paula Robert Sarah Thomas Victor Wendy Alice Brian Diana Edward Fiona George Helen Ivan
Julia Kevin Lucy Michael Nina Peter Rachel Simon Tina Walter""".split()
NOUNS = """box letter garden window kitchen river bridge station market teacher doctor
neighbour bicycle camera ticket jacket table chair painting bottle basket lamp
engine island village mountain forest road bus train phone report meeting
message picture song story candle blanket wallet suitcase mirror piano
umbrella notebook sandwich orange carpet ladder bucket hammer pencil coat""".split()
ADJECTIVES = """old new small large heavy quiet bright dark warm cold empty clean broken
green yellow narrow wooden strange simple careful lucky busy distant famous
gentle silver rough modern tiny wet""".split()
PAST_VERBS = """carried painted opened closed found moved cleaned fixed bought sold
watched followed noticed described borrowed returned packed lifted checked
repaired ordered visited answered covered""".split()
BASE_VERBS = """carry paint open close find move clean fix buy sell watch follow notice
describe borrow return pack lift check repair order visit answer cover""".split()
INTRANSITIVE = """arrived waited laughed slept travelled stopped listened smiled shouted
worked agreed returned stayed""".split()
PLACES = """near the station, behind the house, in the garden, across the street,
at the market, by the river, under the bridge, on the hill, in the kitchen,
at the office, next to the school, inside the museum""".split(",")
TIMES = """this morning, last night, on Monday, after lunch, before dinner, tomorrow,
next week, at noon, early today, in the evening, last summer, on Friday""".split(",")
PRONOUNS = "we they you I she he".split()
MODALS = "should could will might must would".split()
ADVERBS = "very rather quite really almost far".split()
CONNECTIVES = "and, but, so, because, while, although, then, and then".split(", ")


def _article(rng):
    return str(rng.choice(["the", "the", "a", "my", "our", "their", "this"]))


def _noun_phrase(rng, adjective=True):
    words = [_article(rng)]
    if adjective and rng.random() < 0.6:
        words.append(str(rng.choice(ADJECTIVES)))
    words.append(str(rng.choice(NOUNS)))
    return " ".join(words)


def _clause(rng, short=False):
    """Return one clause from a random template (2-3 words if ``short``, else 4-9)."""
    pick = lambda words: str(rng.choice(words))  # noqa: E731
    if short:
        return f"{pick(NAMES)} {pick(INTRANSITIVE)}" + (" again" if rng.random() < 0.5 else "")
    kind = rng.integers(6)
    if kind == 0:
        return f"{_noun_phrase(rng)} {pick(PAST_VERBS)} {_noun_phrase(rng, False)}"
    if kind == 1:
        return f"{pick(NAMES)} {pick(PAST_VERBS)} {_noun_phrase(rng)} {pick(PLACES).strip()}"
    if kind == 2:
        subject = f"{pick(PRONOUNS)} {pick(MODALS)}"
        return f"{subject} {pick(BASE_VERBS)} {_noun_phrase(rng)} {pick(TIMES).strip()}"
    if kind == 3:
        return f"{_noun_phrase(rng, False)} was {pick(ADVERBS)} {pick(ADJECTIVES)}"
    if kind == 4:
        return f"{pick(NAMES)} {pick(INTRANSITIVE)} {pick(PLACES).strip()} {pick(TIMES).strip()}"
    return f"{pick(NAMES)} and {pick(NAMES)} {pick(PAST_VERBS)} {_noun_phrase(rng)}"


def make_sentence(rng, num_words):
    """Return an English sentence of about ``num_words`` words (at least one clause).

    Arguments
    ---------
    rng : numpy.random.Generator
        Source of all choices; the same generator state gives the same sentence.
    num_words : int
        Wanted length; the sentence stops at the first clause boundary at or past
        ``num_words - 2`` words.

    Returns
    -------
    str
        A capitalised sentence ending in a full stop (or a question mark).

    Example
    -------
    >>> import numpy as np
    >>> s = make_sentence(np.random.default_rng(0), 12)
    >>> s[0].isupper() and s[-1] in ".?"
    True
    >>> 8 <= len(s.split()) <= 20
    True
    >>> s == make_sentence(np.random.default_rng(0), 12)
    True
    """
    if num_words < 1:
        raise ValueError(f"make_sentence needs num_words >= 1, got {num_words}")
    clauses = [_clause(rng, short=num_words <= 4)]
    count = len(clauses[0].split())
    while count < num_words - 2:
        joint = str(rng.choice(CONNECTIVES))
        clause = _clause(rng)
        clauses.append(f"{joint} {clause}")
        count += len(clause.split()) + len(joint.split())
    text = ", ".join(clauses) if len(clauses) > 2 else " ".join(clauses)
    return text[0].upper() + text[1:] + ("?" if rng.random() < 0.1 else ".")
