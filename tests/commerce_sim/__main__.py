"""`python -m tests.commerce_sim serve|seed|agent` (see `cli.py`)."""

import sys

from tests.commerce_sim.cli import main

sys.exit(main())
