"""Every engine of the package passes the log conformance suite, and the storage's
conformance suite passes on a storage over each engine."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pipelines_events.errors import LogOpenError
from pipelines_events.events import START
from pipelines_events.log.base import EventLog
from pipelines_events.log.jsonl import JsonlEventLog
from pipelines_events.log.jsonlhelped import HELPER_ENV
from pipelines_events.log.memory import MemoryEventLog, drop_memory_store
from pipelines_events.log.open import LogTarget, open_log
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.testing import EventLogConformance, StorageConformanceTests, draft

_names = itertools.count()


class TestFileLog(EventLogConformance):
    """The JSON-lines file log."""

    __test__ = True

    def make_log(self, **options: Any) -> EventLog:
        return open_log(self.tmp_path / "log.jsonl", **options)

    def log_target(self, log: EventLog) -> LogTarget:
        return str(self.tmp_path / "log.jsonl")


class TestFileLogHelped(TestFileLog):
    """The file log with every read checking its hash links in a helper process (which
    long reads do), so every test of the suite runs through that path too."""

    @pytest.fixture(autouse=True)
    def _helped(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(HELPER_ENV, "1")


class TestMemoryLog(EventLogConformance):
    """The in-memory reference log (writers in one process: threads)."""

    __test__ = True
    separate_processes = False

    def make_log(self, **options: Any) -> EventLog:
        self.name = f"conformance-{next(_names)}"
        return open_log(f"memory://{self.name}", **options)

    def log_target(self, log: EventLog) -> LogTarget:
        return log.location

    @pytest.fixture(autouse=True)
    def _forget(self) -> Iterator[None]:
        yield
        drop_memory_store(self.name)


class TestStorageOverMemoryLog(StorageConformanceTests):
    """The event-log storage over the in-memory engine."""

    refuses_identifying_fields = True

    @pytest.fixture
    def storage(self) -> Iterator[EventLogPipelineResultsStorage]:
        name = f"storage-{next(_names)}"
        storage = EventLogPipelineResultsStorage(f"memory://{name}")
        yield storage
        storage.close()
        drop_memory_store(name)


def test_both_engines_build_identical_chains(tmp_path: Path) -> None:
    drafts = [
        [draft("a", n, p, value={"n": n, "text": "é"}) for p in range(n % 3 + 1)] for n in range(6)
    ]
    stamped = [
        [msgspec.structs.replace(d, ts="2026-12-01T00:00:00.000001+00:00") for d in batch]
        for batch in drafts
    ]
    with JsonlEventLog(tmp_path / "a.jsonl") as file_log, MemoryEventLog() as memory_log:
        for batch in stamped:
            file_log.append(batch)
            memory_log.append(batch)
        on_file = [e for b in file_log.read(START) for e in b.events]
        in_memory = [e for b in memory_log.read(START) for e in b.events]
        assert on_file == in_memory
        assert file_log.head().hash == memory_log.head().hash


def test_open_log_chooses_the_engine_by_target(tmp_path: Path) -> None:
    with open_log(tmp_path / "x.jsonl") as log:
        assert isinstance(log, JsonlEventLog)
    with open_log(str(tmp_path / "y.jsonl"), durability="none") as log:
        assert isinstance(log, JsonlEventLog) and log.durability == "none"
    with open_log("memory://open-log-test") as log:
        assert isinstance(log, MemoryEventLog) and log.location == "memory://open-log-test"
    drop_memory_store("open-log-test")


@pytest.mark.parametrize(
    ("target", "error", "excerpt"),
    [
        ("ftp://host/log", LogOpenError, "unknown log URL scheme 'ftp'"),
        ("memory://", LogOpenError, "memory://NAME"),
        ("memory://a/b", LogOpenError, "memory://NAME"),
        ("memory://never-made", None, ""),
        ("", LogOpenError, r"the log path is empty \(''\)"),
        ("  ", LogOpenError, "the log path is empty"),
        ("x\0y", LogOpenError, "NUL byte"),
        ("file:///tmp/x.jsonl", LogOpenError, "give the file log's path itself, not a file://"),
        ("postgresql:/db.example/results", LogOpenError, "a postgresql URL without its '//'"),
        ("memory:name", LogOpenError, "a memory URL without its '//'"),
        ("adir", LogOpenError, "adir: the log path is a directory"),
    ],
)
def test_open_log_refuses_bad_targets(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    error: type[Exception] | None,
    excerpt: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    try:
        _refused(target, error, excerpt)
    finally:
        assert sorted(p.name for p in tmp_path.rglob("*")) == ["adir"]  # nothing created


def _refused(target: str, error: type[Exception] | None, excerpt: str) -> None:
    if error is None:  # a read-only open of a missing in-memory log
        with pytest.raises(LogOpenError, match="no such in-memory log"):
            open_log(target, readonly=True)
        return
    with pytest.raises(error, match=excerpt):
        open_log(target)


@pytest.mark.parametrize(
    "target",
    [
        "pgx://user:hunter2@db.example/results",
        "pgx://user:hun@ter2@db.example/results",
        "pgx://user:hun/ter2@db.example/results",
        "pgx://db.example/results?user=u&password=hunter2&sslmode=require",
        "postgresql:/user:hunter2@db.example/results",
    ],
)
def test_a_refused_url_never_shows_its_password(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LogOpenError) as info:
        open_log(target)
    assert list(tmp_path.iterdir()) == []
    assert "db.example" in str(info.value) and "ter2" not in str(info.value)


def test_open_log_refuses_options_an_engine_does_not_take(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        open_log(tmp_path / "x.jsonl", colour="red")
    with pytest.raises(TypeError, match="unexpected keyword argument 'mode'"):
        open_log("memory://m", mode=0o600)
    assert not (tmp_path / "x.jsonl").exists()


def test_a_postgres_url_without_the_engine_names_the_extra() -> None:
    try:
        import pipelines_events.log.postgres  # noqa: F401
    except ImportError:
        with pytest.raises(
            LogOpenError, match=r"pip install 'pipelines-events\[postgres\]'"
        ) as info:
            open_log("postgresql://user:secret@db.example/results")
        assert "secret" not in str(info.value)
