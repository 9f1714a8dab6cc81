"""The storage conformance suite: every storage test mixin, in one class to subclass."""

from __future__ import annotations

from typing import Any, ClassVar

from pipelines_events.testing.build import BuildTests
from pipelines_events.testing.cleanup import CleanupTests
from pipelines_events.testing.digest import DigestTests
from pipelines_events.testing.fallback import FallbackTests
from pipelines_events.testing.fields import FieldTests
from pipelines_events.testing.getters import GetterTests
from pipelines_events.testing.propagation import PropagationTests
from pipelines_events.testing.queries import QueryTests
from pipelines_events.testing.statuses import StatusTests

__all__ = ["STORAGE_MIXINS", "StorageConformanceTests"]

STORAGE_MIXINS = (
    BuildTests,
    GetterTests,
    QueryTests,
    StatusTests,
    PropagationTests,
    FallbackTests,
    FieldTests,
    DigestTests,
    CleanupTests,
)
"""The mixins of :class:`StorageConformanceTests`, one per concern."""


class StorageConformanceTests(
    BuildTests,
    GetterTests,
    QueryTests,
    StatusTests,
    PropagationTests,
    FallbackTests,
    FieldTests,
    DigestTests,
    CleanupTests,
):
    """Tests every results storage must pass; subclass it and provide a ``storage`` fixture.

    The fixture returns a fresh, empty :class:`PipelineResultsStorage`. The flags of
    :class:`~pipelines_events.testing.StorageTestCase` (``refuses_identifying_fields``,
    ``supports_digest``, ``supports_cleanup``) say what the storage does not do. This
    class is not collected; a subclass is (its ``__test__`` is set to True) unless it
    sets ``__test__ = False`` itself, as a base shared by several test classes does.
    """

    __test__: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__test__" not in cls.__dict__:
            cls.__test__ = True  # undo the mixins' False: a storage's test class runs as is
