"""``python -m refnn.verify``: the ``make check`` entry point."""

import sys

from refnn.verify.run import main

sys.exit(main())
