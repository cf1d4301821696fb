"""English text to the phoneme tokens of the Kokoro-82M model.

Text goes to IPA with eSpeak NG (``phonemizer-fork`` driving the library and data
that ship in the ``espeakng-loader`` wheel, so nothing is needed from the system),
then the affricates are written as the single symbols the model's vocabulary uses
(``tʃ`` -> ``ʧ``, ``dʒ`` -> ``ʤ``) and each symbol is looked up.

Authors
 * camsat contributors 2026
"""

import functools

__all__ = ["AFFRICATES", "english_to_ipa", "ipa_to_tokens"]

#: Two-letter IPA affricates and the one symbol the model knows them by.
AFFRICATES = {"tʃ": "ʧ", "dʒ": "ʤ"}


@functools.cache
def _espeak_backend():
    try:
        import espeakng_loader
        from phonemizer.backend import EspeakBackend
        from phonemizer.backend.espeak.wrapper import EspeakWrapper
    except ImportError as error:
        raise ImportError(
            "MiniVox needs phonemizer-fork and espeakng-loader: pip install 'camsat-lobes[minivox]'"
        ) from error
    EspeakWrapper.set_library(espeakng_loader.get_library_path())
    EspeakWrapper.set_data_path(espeakng_loader.get_data_path())
    return EspeakBackend(
        "en-us", preserve_punctuation=True, with_stress=True, language_switch="remove-flags"
    )


def english_to_ipa(text):
    """Return the IPA transcription of an English sentence, affricates merged.

    Arguments
    ---------
    text : str
        An English sentence; punctuation is kept (it shapes the prosody).

    Returns
    -------
    str
        IPA with stress marks, e.g. ``"ʧˈiːz."`` for ``"Cheese."``.

    Example
    -------
    >>> english_to_ipa("George chose cheese.")
    'ʤˈɔːɹʤ ʧˈoʊz ʧˈiːz.'
    """
    ipa = _espeak_backend().phonemize([text], strip=True)[0]
    for pair, symbol in AFFRICATES.items():
        ipa = ipa.replace(pair, symbol)
    return ipa


def ipa_to_tokens(ipa, vocab):
    """Return the token ids of an IPA string; symbols outside ``vocab`` are dropped.

    Arguments
    ---------
    ipa : str
        Output of :func:`english_to_ipa`.
    vocab : dict
        Symbol -> id mapping of the model (``vocab.json``).

    Returns
    -------
    list of int
        One id per known symbol, without the padding ids the model adds at each end.

    Example
    -------
    >>> ipa_to_tokens("ab?", {"a": 1, "b": 2})
    [1, 2]
    """
    return [vocab[symbol] for symbol in ipa if symbol in vocab]
