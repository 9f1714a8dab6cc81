"""The crash harness with the full kill count: ``python benchmarks/crash_full.py``.

Forks writer processes on shared logs and kills them with SIGKILL at random moments, 200
times unless ``--kills N`` (or ``PIPELINES_EVENTS_CRASH_KILLS``) says otherwise; then
prints what it checked. Exits 1 if any acknowledged change was lost. The same harness
runs with a reduced count in the test suite (``tests/reliability/test_reliability_crash.py``);
see ``tests/reliability/crash_harness.py`` for what it checks.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the ``tests`` package

from tests.reliability.crash_harness import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
