"""The conformance suites: one every results storage passes, one every log engine passes.

Every storage must behave as :mod:`pipelines_events.results.base` documents. To check a
storage of your own, subclass :class:`StorageConformanceTests` in a test module and give
the class a fixture named ``storage`` that returns a fresh, empty storage::

    import pytest

    from pipelines_events.testing import StorageConformanceTests
    from myapp.storage import MyStorage


    class TestMyStorage(StorageConformanceTests):
        @pytest.fixture
        def storage(self, tmp_path):
            return MyStorage(path=tmp_path / "results.db")

Run it with ``pytest``: every test of the suite runs against ``MyStorage``. A fixture
that holds files or connections can ``yield`` the storage and close it afterwards. A
storage without a digest or a cleanup sets ``supports_digest = False`` or
``supports_cleanup = False``: those tests then check that the method raises
:class:`NotImplementedError` naming it. The suite is made of one mixin per concern
(``STORAGE_MIXINS``); a class composing only some of them sets ``__test__ = True``.

:class:`EventLogConformance` does the same for a log engine (see
:mod:`pipelines_events.testing.log`). The package needs the ``test`` extra (pytest and
freezegun), not the pipeline runtime: it builds runs from :class:`ExamplePipeline` and
:class:`ExampleTask`, stand-ins for tests only.
"""

from __future__ import annotations

try:
    import freezegun  # noqa: F401
    import pytest  # noqa: F401
except ImportError as error:  # the suites are for test environments only
    raise ImportError(
        f"pipelines_events.testing needs the test extra ({error.name} is not installed):"
        " pip install 'pipelines-events[test]'"
    ) from error

from pipelines_events.testing.build import BuildTests
from pipelines_events.testing.capabilities import StorageTestCase
from pipelines_events.testing.cleanup import CleanupTests
from pipelines_events.testing.digest import DigestTests
from pipelines_events.testing.examples import (
    T0,
    ExamplePipeline,
    ExampleReporter,
    ExampleRunner,
    ExampleTask,
    describe_storage,
)
from pipelines_events.testing.fallback import FallbackTests
from pipelines_events.testing.fields import FieldTests
from pipelines_events.testing.getters import GetterTests
from pipelines_events.testing.log import LOG_MIXINS, EventLogConformance
from pipelines_events.testing.log_engine import LogEngineTests
from pipelines_events.testing.log_reads import LogReadTests
from pipelines_events.testing.log_refusals import LogRefusalTests
from pipelines_events.testing.log_support import (
    LogTestCase,
    chain_problems,
    draft,
    write_batches,
)
from pipelines_events.testing.log_writers import LogWriterTests
from pipelines_events.testing.propagation import PropagationTests
from pipelines_events.testing.queries import QueryTests
from pipelines_events.testing.statuses import StatusTests
from pipelines_events.testing.storage import STORAGE_MIXINS, StorageConformanceTests

__all__ = [  # noqa: RUF022 (in the order the API reference shows them)
    "StorageConformanceTests",
    "StorageTestCase",
    "STORAGE_MIXINS",
    "BuildTests",
    "GetterTests",
    "QueryTests",
    "StatusTests",
    "PropagationTests",
    "FallbackTests",
    "FieldTests",
    "DigestTests",
    "CleanupTests",
    "ExamplePipeline",
    "ExampleTask",
    "ExampleRunner",
    "ExampleReporter",
    "describe_storage",
    "T0",
    "EventLogConformance",
    "LogTestCase",
    "LOG_MIXINS",
    "LogReadTests",
    "LogWriterTests",
    "LogRefusalTests",
    "LogEngineTests",
    "chain_problems",
    "draft",
    "write_batches",
]
