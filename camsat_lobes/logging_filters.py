"""Logging filters for messages of other libraries that do not apply to this package.

SpeechBrain's ``speechbrain.utils.train_logger`` warns "torchvision is not available -
cannot save figures" when it is imported without torchvision; this package saves its
figures with matplotlib and never uses that saver, so the warning is dropped (that
exact message only, on that logger only). The filter must be installed before the
SpeechBrain module is first imported, which the package ``__init__`` does.

Authors
 * camsat contributors 2026
"""

import logging

__all__ = [
    "SPEECHBRAIN_TRAIN_LOGGER",
    "TORCHVISION_WARNING",
    "DropMessage",
    "silence_torchvision_warning",
]

SPEECHBRAIN_TRAIN_LOGGER = "speechbrain.utils.train_logger"
TORCHVISION_WARNING = "torchvision is not available - cannot save figures"


class DropMessage(logging.Filter):
    """Drop the log records whose formatted message is exactly ``message``.

    Arguments
    ---------
    message : str
        The message to drop; every other record passes.

    Example
    -------
    >>> drop = DropMessage("noise")
    >>> def record(text):
    ...     return logging.LogRecord("x", logging.WARNING, __file__, 1, text, (), None)
    >>> drop.filter(record("noise")), drop.filter(record("signal"))
    (False, True)
    """

    def __init__(self, message):
        super().__init__()
        self.message = message

    def filter(self, record):
        """Tell whether ``record`` passes.

        Arguments
        ---------
        record : logging.LogRecord
            The record to judge.

        Returns
        -------
        bool
            False for the dropped message, True otherwise.

        Example
        -------
        >>> record = logging.LogRecord("x", logging.INFO, __file__, 1, "a %s", ("b",), None)
        >>> DropMessage("a b").filter(record)
        False
        """
        return record.getMessage() != self.message


def silence_torchvision_warning():
    """Drop SpeechBrain's "torchvision is not available" warning; safe to call repeatedly.

    Installs a :class:`DropMessage` filter on the ``speechbrain.utils.train_logger``
    logger (once). Call it before that module is first imported (it warns while
    being imported).

    Returns
    -------
    DropMessage
        The installed filter.

    Example
    -------
    >>> first = silence_torchvision_warning()
    >>> first is silence_torchvision_warning()
    True
    >>> logger = logging.getLogger(SPEECHBRAIN_TRAIN_LOGGER)
    >>> first in logger.filters
    True
    """
    logger = logging.getLogger(SPEECHBRAIN_TRAIN_LOGGER)
    for installed in logger.filters:
        if isinstance(installed, DropMessage) and installed.message == TORCHVISION_WARNING:
            return installed
    drop = DropMessage(TORCHVISION_WARNING)
    logger.addFilter(drop)
    return drop
