"""The log conformance suite: every log engine test mixin, in one class to subclass."""

from __future__ import annotations

from typing import ClassVar

from pipelines_events.testing.log_engine import LogEngineTests
from pipelines_events.testing.log_reads import LogReadTests
from pipelines_events.testing.log_refusals import LogRefusalTests
from pipelines_events.testing.log_writers import LogWriterTests

__all__ = ["LOG_MIXINS", "EventLogConformance"]

LOG_MIXINS = (LogReadTests, LogWriterTests, LogRefusalTests, LogEngineTests)
"""The mixins of :class:`EventLogConformance`, one per concern."""


class EventLogConformance(LogReadTests, LogWriterTests, LogRefusalTests, LogEngineTests):
    """Tests every event log engine passes: the behaviour of
    :class:`~pipelines_events.log.base.EventLog`, as a test class any engine subclasses.

    Subclass it in a test module, set ``__test__ = True`` and give the class
    ``make_log(**options)`` (a new, empty log of the engine, opened with the engine's
    ``options``) and ``log_target(log)`` (what :func:`~pipelines_events.log.open.open_log`
    takes to open another handle on the same log, in this process or, when
    ``separate_processes`` is True, in a child process)::

        class TestMyLog(EventLogConformance):
            __test__ = True

            def make_log(self, **options):
                return open_log(self.tmp_path / "log.jsonl", **options)

            def log_target(self, log):
                return str(self.tmp_path / "log.jsonl")

    ``self.tmp_path`` is a fresh directory per test. Logs the suite opens are closed by it.
    The suite is the mixins of ``LOG_MIXINS``; a class composing only some of them
    sets ``__test__ = True`` too.
    """

    __test__: ClassVar[bool] = False
