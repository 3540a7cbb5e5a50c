"""`python -m scrapemaster`: the command line."""

import sys

from scrapemaster.cli import main

sys.exit(main())
