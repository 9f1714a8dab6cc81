"""``python -m pipelines_events``: the command line."""

import sys

from pipelines_events.cli import main

sys.exit(main())
