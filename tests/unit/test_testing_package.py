"""The ``pipelines_events.testing`` package: its mixins, its capability flags, its extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest

from pipelines_events.results.base import PipelineDigest, not_implemented
from pipelines_events.results.memory import MemoryPipelineResultsStorage
from pipelines_events.testing import (
    LOG_MIXINS,
    STORAGE_MIXINS,
    CleanupTests,
    DigestTests,
    EventLogConformance,
    LogTestCase,
    StorageConformanceTests,
    StorageTestCase,
    describe_storage,
)
from pipelines_events.testing.examples import _build, _single_pipeline

ROOT = Path(__file__).resolve().parents[2]


class NoDigestNoCleanupStorage(MemoryPipelineResultsStorage):
    """The memory storage without a digest and a cleanup: both raise the documented
    NotImplementedError, as the base class does for what a storage does not implement."""

    def get_pipeline_digest(self) -> PipelineDigest:
        raise not_implemented(self, "get_pipeline_digest")

    def cleanup(self, before: datetime | None = None) -> list[str]:
        raise not_implemented(self, "cleanup")


class TestStorageWithoutDigestOrCleanup(StorageConformanceTests):
    """The whole suite passes on a storage that says it has no digest and no cleanup."""

    supports_digest = False
    supports_cleanup = False

    @pytest.fixture
    def storage(self) -> NoDigestNoCleanupStorage:
        return NoDigestNoCleanupStorage()


class _ClaimsNoDigestOrCleanup(DigestTests, CleanupTests):
    supports_digest = False
    supports_cleanup = False


class _ClaimsDigestAndCleanup(DigestTests, CleanupTests):
    pass


def test_a_storage_that_has_what_its_flags_deny_fails_the_suite() -> None:
    suite = _ClaimsNoDigestOrCleanup()
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        suite.test_digest_of_an_empty_storage(MemoryPipelineResultsStorage())
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        suite.test_cleanup_of_an_empty_storage(MemoryPipelineResultsStorage())


def test_a_storage_that_lacks_what_its_flags_claim_fails_the_suite() -> None:
    suite = _ClaimsDigestAndCleanup()
    with pytest.raises(NotImplementedError, match=r"does not implement get_pipeline_digest\(\)"):
        suite.test_digest_of_an_empty_storage(NoDigestNoCleanupStorage())
    with pytest.raises(NotImplementedError, match=r"does not implement cleanup\(\)"):
        suite.test_cleanup_of_an_empty_storage(NoDigestNoCleanupStorage())


def test_a_refusal_that_changes_the_storage_fails_the_suite() -> None:
    class Forgetful(NoDigestNoCleanupStorage):
        def cleanup(self, before: datetime | None = None) -> list[str]:
            self.executions.clear()  # removes every run, then says it cannot clean up
            raise not_implemented(self, "cleanup")

    storage = Forgetful()
    _build(storage, pipeline=_single_pipeline())
    with pytest.raises(AssertionError):
        _ClaimsNoDigestOrCleanup().run_cleanup(storage)


def test_describe_storage_can_leave_the_digest_out() -> None:
    storage = NoDigestNoCleanupStorage()
    _build(storage, pipeline=_single_pipeline())
    state = describe_storage(storage, digest=False)
    assert state["digest"] is None
    assert state["runs"] == ["run-1"]
    with pytest.raises(NotImplementedError, match="get_pipeline_digest"):
        describe_storage(storage)


def test_every_mixin_is_left_out_of_collection_on_its_own() -> None:
    for mixin in (*STORAGE_MIXINS, *LOG_MIXINS, StorageTestCase, LogTestCase):
        assert mixin.__dict__["__test__"] is False, mixin
    assert StorageConformanceTests.__dict__["__test__"] is False
    assert EventLogConformance.__dict__["__test__"] is False


def test_a_subclass_of_the_storage_suite_is_collected_unless_it_says_not() -> None:
    class Shared(StorageConformanceTests):
        __test__ = False

    class TestConcrete(Shared):
        pass

    assert TestStorageWithoutDigestOrCleanup.__test__ is True
    assert Shared.__test__ is False
    assert TestConcrete.__test__ is True


@pytest.mark.parametrize(
    ("suite", "mixins"),
    [(StorageConformanceTests, STORAGE_MIXINS), (EventLogConformance, LOG_MIXINS)],
    ids=["storage", "log"],
)
def test_the_suites_are_their_mixins_and_no_test_hides_another(
    suite: type, mixins: tuple[type, ...]
) -> None:
    assert suite.__bases__ == mixins
    names = [name for mixin in mixins for name in vars(mixin) if name.startswith("test_")]
    assert len(names) == len(set(names)), "two mixins define a test of the same name"
    assert sorted(names) == sorted(name for name in dir(suite) if name.startswith("test_"))


# Makes ``import NAME`` fail the way it does where NAME is not installed.
_HIDE = """
import sys
from importlib.abc import MetaPathFinder

class Hide(MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in {hidden!r}:
            raise ModuleNotFoundError(f"No module named {{fullname!r}}", name=fullname)
        return None

sys.meta_path.insert(0, Hide())
import pipelines_events.results.eventlog  # the library itself needs no test extra
try:
    import pipelines_events.testing
except ImportError as error:
    print(error)
else:
    print("imported")
"""


@pytest.mark.parametrize("hidden", ["pytest", "freezegun"])
def test_the_package_needs_the_test_extra_and_says_so(hidden: str) -> None:
    code = textwrap.dedent(_HIDE.format(hidden=(hidden, "_" + hidden)))
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"pipelines_events.testing needs the test extra ({hidden} is not installed):"
        " pip install 'pipelines-events[test]'"
    )
