"""python -m cladbench.report TABLES_DIR OUT_DIR [--only FIGURE|tables]: see cladbench.report."""

import sys

from . import main

sys.exit(main())
