"""The command line's exit statuses, defined once."""

from __future__ import annotations

from typing import Final

EXIT_OK: Final = 0
"""The command did what it was asked."""
EXIT_FAILED: Final = 1
"""A check failed (``verify``) or a run ended in a failure (``run``)."""
EXIT_ERROR: Final = 2
"""Bad input: a usage error, a log that cannot be opened, an id that does not exist."""
EXIT_TIMED_OUT: Final = 124
"""``follow --until-done`` gave up after ``--timeout`` (the exit status of timeout(1))."""
EXIT_INTERRUPTED: Final = 130
"""``run`` was interrupted by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it)."""
