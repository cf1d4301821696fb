"""Entry point of ``python -m camsat_lobes.inference`` (see :mod:`camsat_lobes.inference.cli`)."""

import sys

from camsat_lobes.inference.cli import main

if __name__ == "__main__":
    sys.exit(main())
