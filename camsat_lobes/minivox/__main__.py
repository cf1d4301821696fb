"""Command line: generate a MiniVox corpus and print its root.

Example: ``python -m camsat_lobes.minivox --preset small --workers 2``.

Authors
 * camsat contributors 2026
"""

import argparse
import logging

from .config import PRESET_NAMES, MiniVoxConfig
from .corpus import generate_minivox


def main(argv=None):
    """Parse the arguments, generate the corpus and print its root.

    Example
    -------
    >>> main(["--preset", "tiny", "--quiet"])  # doctest: +ELLIPSIS
    /...minivox/...
    0
    """
    parser = argparse.ArgumentParser(
        prog="python -m camsat_lobes.minivox", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--root", help="output folder (default: $CAMSAT_CACHE/minivox/<hash>)")
    parser.add_argument("--preset", choices=PRESET_NAMES, default="default")
    parser.add_argument("--workers", type=int, help="worker processes (default: all cores)")
    parser.add_argument("--seed", type=int, help="override the preset's seed")
    parser.add_argument("--train-speakers", type=int, help="override num_train_speakers")
    parser.add_argument("--test-speakers", type=int, help="override num_test_speakers")
    parser.add_argument("--quiet", action="store_true", help="no log messages, only the root")
    args = parser.parse_args(argv)
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    overrides = {
        "seed": args.seed,
        "num_train_speakers": args.train_speakers,
        "num_test_speakers": args.test_speakers,
    }
    overrides = {key: value for key, value in overrides.items() if value is not None}
    config = MiniVoxConfig.preset(args.preset, **overrides)
    root = generate_minivox(config, args.root, num_workers=args.workers)
    print(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
