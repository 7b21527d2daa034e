"""``python -m diffc``: the same as the ``diffc`` console script."""

import sys

from diffc.cli import main

sys.exit(main())
