"""Only SpeechBrain's torchvision warning is dropped from the logs."""

import logging
import subprocess
import sys

from camsat_lobes.logging_filters import (
    SPEECHBRAIN_TRAIN_LOGGER,
    TORCHVISION_WARNING,
    silence_torchvision_warning,
)


def test_only_the_torchvision_warning_is_dropped(caplog):
    silence_torchvision_warning()
    logger = logging.getLogger(SPEECHBRAIN_TRAIN_LOGGER)
    with caplog.at_level(logging.WARNING):
        logger.warning(TORCHVISION_WARNING)
        logger.warning("another SpeechBrain warning")
    assert [record.getMessage() for record in caplog.records] == ["another SpeechBrain warning"]


def test_importing_speechbrain_train_logger_is_quiet_once_silenced():
    code = (
        "from camsat_lobes.logging_filters import silence_torchvision_warning\n"
        "silence_torchvision_warning()\n"
        "import speechbrain.utils.train_logger\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert TORCHVISION_WARNING not in result.stderr + result.stdout
