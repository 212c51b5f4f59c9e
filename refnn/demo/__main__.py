"""``python -m refnn.demo``: see :mod:`refnn.demo.cli`."""

from refnn.demo.cli import main

raise SystemExit(main())
