"""What every storage test mixin shares: the capability flags and the checks they need.

A storage that does not support a capability sets its flag to False on its test class;
the tests of that capability then check the documented refusal instead: the method
raises :class:`NotImplementedError` naming the storage's class and the method, and
changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from pipelines_events.results.base import PipelineDigest, PipelineResultsStorage
from pipelines_events.testing.examples import describe_storage

__all__ = ["StorageTestCase"]


class StorageTestCase:
    """The base of the storage test mixins: the flags a storage's test class sets.

    The test class gives a fixture named ``storage`` that returns a fresh, empty storage.
    """

    __test__: ClassVar[bool] = False

    refuses_identifying_fields: ClassVar[bool] = False
    """The storage indexes the fields that identify an object and refuses ``set_`` of
    them (the seed's rule is that ``set_foo`` sets them)."""

    supports_digest: ClassVar[bool] = True
    """``get_pipeline_digest()`` works (False: it raises :class:`NotImplementedError`)."""

    supports_cleanup: ClassVar[bool] = True
    """``cleanup()`` works (False: it raises :class:`NotImplementedError`)."""

    def describe(self, storage: PipelineResultsStorage) -> dict[str, Any]:
        """:func:`describe_storage`, with the digest when the storage has one."""
        return describe_storage(storage, digest=self.supports_digest)

    def assert_not_supported(
        self, storage: PipelineResultsStorage, method: str, call: Callable[[], object]
    ) -> None:
        """``call`` raises the documented NotImplementedError and changes nothing."""
        before = self.describe(storage)
        pattern = rf"{re.escape(type(storage).__name__)} does not implement {method}\(\)"
        with pytest.raises(NotImplementedError, match=pattern):
            call()
        assert self.describe(storage) == before

    def read_digest(self, storage: PipelineResultsStorage) -> PipelineDigest | None:
        """The storage's digest; None, once its refusal is checked, without
        :attr:`supports_digest`."""
        if self.supports_digest:
            return storage.get_pipeline_digest()
        self.assert_not_supported(storage, "get_pipeline_digest", storage.get_pipeline_digest)
        return None
