"""The catalogue of bad inputs: each is refused with a clear error and writes nothing.

Every case runs in a directory holding a log (two runs), a regular file, a directory and
a named pipe; the whole directory (names, types and bytes) must be the same after the
refusal. The table in ``docs/reference/errors.rst`` lists the same cases, in the same
order (a test below keeps the two in step).
"""

from __future__ import annotations

import abc
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pipelines_events.conf import SETTINGS_MODULE_ENV, override_settings
from pipelines_events.errors import (
    EventTooLargeError,
    ImproperlyConfigured,
    InvalidValueError,
    LogCorruptError,
    LogError,
    LogOpenError,
    ObjectNotFoundError,
)
from pipelines_events.events import GENESIS_HASH, SCHEMA_VERSION
from pipelines_events.log import LogPermissionsWarning, read_events
from pipelines_events.log.chain import encode_event, seal
from pipelines_events.results.base import PipelineResultsStorage
from pipelines_events.results.eventlog import (
    EventLogPipelineResultsStorage,
    EventLogTaskResult,
)
from pipelines_events.results.helpers import get_pipeline_results_storage, reset_storage_object
from pipelines_events.status import PipelineTaskStatus
from tests.reliability.common import Reporter, Runner, TinyPipeline, TinyTask, build

ROOT = Path(__file__).resolve().parents[2]
DOCS_TABLE = ROOT / "docs" / "reference" / "errors.rst"
STORAGE = "pipelines_events.results.eventlog.EventLogPipelineResultsStorage"


class AbstractStorage(PipelineResultsStorage, abc.ABC):
    """A storage that declares an abstract method of its own."""

    @abc.abstractmethod
    def connect(self) -> None: ...


@dataclass
class Ctx:
    """What a case works with: the directory, the log and objects of its two runs."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.log = tmp / "log.jsonl"
        self.storage = EventLogPipelineResultsStorage(self.log)
        build(self.storage, "run-1")
        done = build(self.storage, "done-run")
        (done_result,) = self.storage.get_task_results(run_id="done-run")
        done_result.report_status_change(None, PipelineTaskStatus.DONE)
        assert done.get_status() is PipelineTaskStatus.DONE
        (self.result,) = self.storage.get_task_results(run_id="run-1")
        (self.done_result,) = self.storage.get_task_results(run_id="done-run")
        (tmp / "file").write_text("a regular file\n")
        (tmp / "dir").mkdir()
        os.mkfifo(tmp / "fifo")
        (tmp / "cwd").mkdir()

    def setting(self, value: Any) -> Any:
        """Use ``value`` as the storage setting and ask the helpers for the storage."""
        reset_storage_object()
        try:
            with override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE=value):
                return get_pipeline_results_storage()
        finally:
            reset_storage_object()

    def kwargs(self, **kwargs: Any) -> Any:
        """The setting ``(event-log storage, kwargs)``, with ``path`` in the directory."""
        kwargs.setdefault("path", str(self.tmp / "new.jsonl"))
        return self.setting((STORAGE, kwargs))

    def open(self, name: str, **kwargs: Any) -> Any:
        """Open the event-log storage on file ``name`` and list its executions."""
        storage = EventLogPipelineResultsStorage(self.tmp / name, **kwargs)
        try:
            return len(storage.get_pipeline_executions())
        finally:
            storage.close()

    def file(self, name: str, data: bytes) -> None:
        (self.tmp / name).write_bytes(data)
        os.chmod(self.tmp / name, 0o600)

    def log_lines(self) -> list[bytes]:
        return self.log.read_bytes().splitlines()

    def build(self, run_id: Any = "new-run", pipeline: TinyPipeline | None = None) -> Any:
        return self.storage.build_pipeline_execution(
            pipeline or TinyPipeline(), run_id, Runner(), Reporter(), {"n": 1}
        )


@dataclass(frozen=True)
class Bad:
    """One bad input: how to give it, the error (None: accepted, see ``excerpt``) and a
    regular expression its message must contain."""

    input: str
    error: type[BaseException] | None
    excerpt: str
    run: Callable[[Ctx], Any]
    setup: Callable[[Ctx], None] | None = None


def _cycle() -> list[Any]:
    items: list[Any] = [1]
    items.append(items)
    return items


def _dict_cycle() -> dict[str, Any]:
    items: dict[str, Any] = {}
    items["self"] = items
    return items


def _bad_module(ctx: Ctx) -> None:
    (ctx.tmp / "cwd" / "broken_storage_module.py").write_text("raise RuntimeError('boom')\n")
    sys.path.insert(0, str(ctx.tmp / "cwd"))


def _from_env(ctx: Ctx) -> Any:
    old = os.environ.get(SETTINGS_MODULE_ENV)
    os.environ[SETTINGS_MODULE_ENV] = "no_such_settings_module"
    try:
        reset_storage_object()
        return get_pipeline_results_storage()
    finally:
        if old is None:
            del os.environ[SETTINGS_MODULE_ENV]
        else:
            os.environ[SETTINGS_MODULE_ENV] = old
        reset_storage_object()


def _unknown_setting(ctx: Ctx) -> Any:
    with override_settings(PIPELINES_NO_SUCH_SETTING=1):
        return None


def _newer_version(ctx: Ctx) -> None:
    first = next(iter(read_events(ctx.log)))
    newer = msgspec.structs.replace(first, v=SCHEMA_VERSION + 1, more=0, hash="")
    line, _ = seal(encode_event(newer), GENESIS_HASH)
    ctx.file("newer.jsonl", line)


def _edit_log(ctx: Ctx, lines: Callable[[list[bytes]], list[bytes]], name: str) -> None:
    ctx.file(name, b"".join(line + b"\n" for line in lines(ctx.log_lines())))


def _big_run(ctx: Ctx) -> Any:
    return ctx.build("big-run", TinyPipeline(objects=["x" * (1 << 20)]))


def _status_change_over_limit(ctx: Ctx) -> Any:
    storage = EventLogPipelineResultsStorage(ctx.tmp / "small.jsonl", max_event_bytes=512)
    try:
        (result,) = storage.get_task_results()
        result.report_status_change(None, PipelineTaskStatus.RUNNING, "m" * 600)
    finally:
        storage.close()


def _small_log(ctx: Ctx) -> None:
    storage = EventLogPipelineResultsStorage(ctx.tmp / "small.jsonl", max_event_bytes=512)
    build(storage, "run")
    storage.run_index()  # the run index (a cache reads bring up to date) is current
    storage.close()


def _cleanup_setup(ctx: Ctx) -> None:
    """Clean the finished run up before the snapshot of the directory is taken."""
    assert ctx.storage.cleanup() == ["done-run"]


def _wrong_type_pipeline_object(ctx: Ctx) -> Any:
    return ctx.build("run-2", TinyPipeline(objects=[{1, 2}]))


def _nan_config(ctx: Ctx) -> Any:
    task = TinyTask("nan")
    task.get_serializable_config = lambda: {"threshold": float("nan")}  # type: ignore[method-assign]
    return ctx.build("run-2", TinyPipeline(tasks=[task]))


def _nested(levels: int) -> list[Any]:
    """``levels`` lists inside one another."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def _build_on_proc_version() -> None:
    """Build a run on ``/proc/version``. Root may open it for writing, so the log first
    warns that its permissions (0o444) are too open, and then the append is refused;
    another user cannot open it for writing at all."""
    if os.geteuid() != 0:
        build(EventLogPipelineResultsStorage("/proc/version"), "run")
        return
    with pytest.warns(LogPermissionsWarning, match=r"/proc/version: the log's permissions 0o444"):
        build(EventLogPipelineResultsStorage("/proc/version"), "run")


CATALOGUE: dict[str, Bad] = {
    # -- the storage setting --------------------------------------------------------
    "setting-int": Bad(
        "setting: an int (``42``)",
        ImproperlyConfigured,
        r"give a dotted class path \(str\) or a 2-tuple \(dotted class path, kwargs dict\), "
        r"not int 42",
        lambda c: c.setting(42),
    ),
    "setting-1-tuple": Bad(
        "setting: a 1-tuple",
        ImproperlyConfigured,
        r"give a 2-tuple \(dotted class path, kwargs dict\), not a tuple of 1 items",
        lambda c: c.setting((STORAGE,)),
    ),
    "setting-3-tuple": Bad(
        "setting: a 3-tuple",
        ImproperlyConfigured,
        r"not a tuple of 3 items",
        lambda c: c.setting((STORAGE, {}, {})),
    ),
    "setting-kwargs-list": Bad(
        "setting: kwargs that are a list",
        ImproperlyConfigured,
        r"the second item must be a dict of kwargs for the class, not list",
        lambda c: c.setting((STORAGE, ["path"])),
    ),
    "setting-path-not-str": Bad(
        "setting: a class path that is not a str",
        ImproperlyConfigured,
        r"the first item must be the dotted class path as a str, not int 5",
        lambda c: c.setting((5, {})),
    ),
    "setting-kwargs-key": Bad(
        "setting: a kwargs key that is not a str",
        ImproperlyConfigured,
        r"the kwargs keys must be str, not int 1",
        lambda c: c.setting((STORAGE, {1: "x"})),
    ),
    "setting-empty-path": Bad(
        "setting: an empty class path",
        ImproperlyConfigured,
        r"the dotted class path is empty",
        lambda c: c.setting(""),
    ),
    "setting-not-dotted": Bad(
        "setting: a class path without a module (``Storage``)",
        ImproperlyConfigured,
        r"'Storage' is not a dotted class path: give 'module.ClassName'",
        lambda c: c.setting("Storage"),
    ),
    "setting-not-names": Bad(
        "setting: a class path that is not Python names (``1abc.X``)",
        ImproperlyConfigured,
        r"'1abc.X' is not a dotted class path of Python names",
        lambda c: c.setting("1abc.X"),
    ),
    "setting-no-module": Bad(
        "setting: a module that does not exist",
        ImproperlyConfigured,
        r"cannot import module 'no_such_module': ModuleNotFoundError",
        lambda c: c.setting("no_such_module.Storage"),
    ),
    "setting-module-raises": Bad(
        "setting: a module that fails while importing",
        ImproperlyConfigured,
        r"cannot import module 'broken_storage_module': RuntimeError: boom",
        lambda c: c.setting("broken_storage_module.Storage"),
        setup=_bad_module,
    ),
    "setting-no-class": Bad(
        "setting: a class the module does not have",
        ImproperlyConfigured,
        r"module 'pipelines_events.results.eventlog' has no attribute 'NoSuchStorage'",
        lambda c: c.setting("pipelines_events.results.eventlog.NoSuchStorage"),
    ),
    "setting-not-a-storage": Bad(
        "setting: a class that is not a storage",
        ImproperlyConfigured,
        r"is not a subclass of pipelines_events.results.base.PipelineResultsStorage "
        r"\(it is the class LogError\)",
        lambda c: c.setting("pipelines_events.errors.LogError"),
    ),
    "setting-a-function": Bad(
        "setting: a function, not a class",
        ImproperlyConfigured,
        r"is not a subclass of .*\(it is function\)",
        lambda c: c.setting("pipelines_events.results.helpers.get_pipeline_results_storage"),
    ),
    "setting-abstract": Bad(
        "setting: a storage class with an abstract method of its own",
        ImproperlyConfigured,
        r"is abstract: it does not implement connect",
        lambda c: c.setting(f"{__name__}.AbstractStorage"),
    ),
    "setting-unknown-kwarg": Bad(
        "setting: a kwarg the class does not take (``paht``)",
        ImproperlyConfigured,
        r"the kwargs do not fit EventLogPipelineResultsStorage\(.*\): "
        r"got an unexpected keyword argument 'paht'",
        lambda c: c.setting((STORAGE, {"paht": "x.jsonl"})),
    ),
    "setting-kwargs-to-memory": Bad(
        "setting: kwargs for a class that takes none",
        ImproperlyConfigured,
        r"the kwargs do not fit MemoryPipelineResultsStorage\(\): "
        r"got an unexpected keyword argument 'path'",
        lambda c: c.setting(
            ("pipelines_events.results.memory.MemoryPipelineResultsStorage", {"path": "x"})
        ),
    ),
    "setting-unknown-name": Bad(
        "a setting that does not exist",
        ImproperlyConfigured,
        r"unknown setting 'PIPELINES_NO_SUCH_SETTING'; the settings are: "
        r"PIPELINES_CELERY_BROKER_URL, PIPELINES_CELERY_CONFIG, "
        r"PIPELINES_PIPELINES_RESULTS_STORAGE",
        _unknown_setting,
    ),
    "settings-module-missing": Bad(
        f"``{SETTINGS_MODULE_ENV}`` naming a module that does not exist",
        ImproperlyConfigured,
        rf"the environment variable {SETTINGS_MODULE_ENV} names the module "
        r"'no_such_settings_module', which cannot be imported",
        _from_env,
    ),
    # -- the storage's kwargs ---------------------------------------------------------
    "durability": Bad(
        "``durability`` that is not a mode (``sometimes``)",
        ImproperlyConfigured,
        r"refused its kwargs: LogOpenError: durability must be one of 'fsync', 'none', "
        r"not 'sometimes'",
        lambda c: c.kwargs(durability="sometimes"),
    ),
    "max-event-bytes-zero": Bad(
        "``max_event_bytes`` of 0",
        ImproperlyConfigured,
        r"max_event_bytes must be an int of at least 256, not 0",
        lambda c: c.kwargs(max_event_bytes=0),
    ),
    "max-event-bytes-negative": Bad(
        "``max_event_bytes`` negative",
        ImproperlyConfigured,
        r"max_event_bytes must be an int of at least 256, not -1",
        lambda c: c.kwargs(max_event_bytes=-1),
    ),
    "max-event-bytes-bool": Bad(
        "``max_event_bytes`` of ``True``",
        ImproperlyConfigured,
        r"max_event_bytes must be an int of at least 256, not True",
        lambda c: c.kwargs(max_event_bytes=True),
    ),
    "mode-str": Bad(
        "``mode`` as a str (``'0600'``)",
        ImproperlyConfigured,
        r"mode must be a permission between 0o000 and 0o777, not '0600'",
        lambda c: c.kwargs(mode="0600"),
    ),
    "mode-too-big": Bad(
        "``mode`` with more than permission bits (``0o1777``)",
        ImproperlyConfigured,
        r"mode must be a permission between 0o000 and 0o777, not 1023",
        lambda c: c.kwargs(mode=0o1777),
    ),
    "snapshots": Bad(
        "``snapshots`` that is not a bool",
        ImproperlyConfigured,
        r"snapshots must be True or False, not 'yes'",
        lambda c: c.kwargs(snapshots="yes"),
    ),
    "snapshot-every": Bad(
        "``snapshot_every`` of 0",
        ImproperlyConfigured,
        r"snapshot_every must be a positive int \(events\), not 0",
        lambda c: c.kwargs(snapshot_every=0),
    ),
    # -- the log's location -----------------------------------------------------------
    "path-directory": Bad(
        "log path: a directory",
        ImproperlyConfigured,
        r"LogOpenError: .*/dir: the log path is a directory, not a file",
        lambda c: c.kwargs(path=str(c.tmp / "dir")),
    ),
    "path-under-file": Bad(
        "log path: under a regular file (``file/log.jsonl``)",
        ImproperlyConfigured,
        r"LogOpenError: .*/file/log.jsonl: cannot create the log's directory .*/file: "
        r"(File exists|Not a directory)",
        lambda c: c.kwargs(path=str(c.tmp / "file" / "log.jsonl")),
    ),
    "path-proc": Bad(
        "log path: where nothing can be created (``/proc/self/new/log.jsonl``)",
        ImproperlyConfigured,
        r"/proc/self/new/log.jsonl: cannot create the log's directory /proc/self/new",
        lambda c: c.kwargs(path="/proc/self/new/log.jsonl"),
    ),
    "path-dev-null": Bad(
        "log path: a device (``/dev/null``)",
        ImproperlyConfigured,
        r"/dev/null: the log path is not a regular file",
        lambda c: c.kwargs(path="/dev/null"),
    ),
    "path-fifo": Bad(
        "log path: a named pipe",
        LogOpenError,
        r"/fifo: the log path is not a regular file",
        lambda c: c.open("fifo"),
    ),
    "path-fifo-readonly": Bad(
        "log path: a named pipe, read by ``read_events`` (does not wait for a writer)",
        LogOpenError,
        r"/fifo: the log path is not a regular file",
        lambda c: list(read_events(c.tmp / "fifo")),
    ),
    "path-int": Bad(
        "log path: not a str or path (``5``)",
        ImproperlyConfigured,
        r"the log path must be a str or path, not 5",
        lambda c: c.kwargs(path=5),
    ),
    "path-too-long": Bad(
        "log path: a file name over 255 bytes",
        LogOpenError,
        r"the log path cannot be used: File name too long",
        lambda c: c.open("x" * 300),
    ),
    "path-too-long-new-dirs": Bad(
        "log path: a file name over 255 bytes in directories yet to create",
        LogOpenError,
        r"cannot open the log for writing: File name too long",
        lambda c: c.open("new/sub/" + "x" * 300),
    ),
    "path-missing-readonly": Bad(
        "a log to read that does not exist",
        LogOpenError,
        r"/missing.jsonl: no such log file",
        lambda c: list(read_events(c.tmp / "missing.jsonl")),
    ),
    "proc-file": Bad(
        "log path: a kernel file that takes no writes (``/proc/version``)",
        LogError,
        r"/proc/version: (the append failed \(EIO: Input/output error\); "
        r"nothing of the batch was written|cannot open the log for writing)",
        lambda c: _build_on_proc_version(),
    ),
    # -- files that are not logs --------------------------------------------------------
    "binary-file": Bad(
        "a binary file given as a log",
        LogCorruptError,
        r"/binary.jsonl: line 1: not valid UTF-8 \(byte \d+: .*\); is this a log file\?",
        lambda c: c.open("binary.jsonl"),
        setup=lambda c: c.file("binary.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff"),
    ),
    "binary-file-no-newline": Bad(
        "a binary file without a newline",
        LogCorruptError,
        r"line 1: the file ends \(line 1 on, 6 bytes: .*\) with bytes that are not the start "
        r"of an event, so they are not a torn write",
        lambda c: c.open("blob.jsonl"),
        setup=lambda c: c.file("blob.jsonl", b"\x00\xff\xfe\x01\x02\x03"),
    ),
    "csv-file": Bad(
        "a CSV file given as a log",
        LogCorruptError,
        r"/data.csv: line 1: not valid JSON",
        lambda c: c.open("data.csv"),
        setup=lambda c: c.file("data.csv", b"id,name\n1,a\n"),
    ),
    "json-not-event": Bad(
        "JSON lines that are not events",
        LogCorruptError,
        r"line 1: not a valid event: Object missing required field `type`",
        lambda c: c.open("other.jsonl"),
        setup=lambda c: c.file("other.jsonl", b'{"a": 1}\n'),
    ),
    "empty-file": Bad(
        "an empty file (a valid, empty log: no error, nothing written)",
        None,
        "0",
        lambda c: c.open("empty.jsonl"),
        setup=lambda c: c.file("empty.jsonl", b""),
    ),
    "newer-schema": Bad(
        "a log written by a newer schema version",
        LogCorruptError,
        rf"line 1: written with schema version {SCHEMA_VERSION + 1}; this pipelines-events "
        rf"reads versions up to {SCHEMA_VERSION}: upgrade pipelines-events to read this log",
        lambda c: c.open("newer.jsonl"),
        setup=_newer_version,
    ),
    "invalid-utf8-in-log": Bad(
        "a log line with invalid UTF-8",
        LogCorruptError,
        r"line 2: not valid UTF-8",
        lambda c: c.open("utf8.jsonl"),
        setup=lambda c: _edit_log(
            c,
            lambda ls: [ls[0], ls[1].replace(b"PENDING", b"PEND\xc3\x28NG"), *ls[2:]],
            "utf8.jsonl",
        ),
    ),
    "edited-line": Bad(
        "a log line edited by hand",
        LogCorruptError,
        r"line 2: hash link broken|line 2: .*hash",
        lambda c: c.open("edited.jsonl"),
        setup=lambda c: _edit_log(
            c, lambda ls: [ls[0], ls[1].replace(b"PENDING", b"RUNNING"), *ls[2:]], "edited.jsonl"
        ),
    ),
    "deleted-line": Bad(
        "a log with a line deleted",
        LogCorruptError,
        r"line 2: expected seq 2, found seq 3",
        lambda c: c.open("gap.jsonl"),
        setup=lambda c: _edit_log(c, lambda ls: [ls[0], *ls[2:]], "gap.jsonl"),
    ),
    # -- values -------------------------------------------------------------------------
    "value-object": Bad(
        "``set_`` of an object JSON cannot hold",
        InvalidValueError,
        r"field 'payload': payload is of type builtins.object, which JSON cannot hold",
        lambda c: c.result.set_payload(object()),
    ),
    "value-bytes": Bad(
        "``set_`` of bytes",
        InvalidValueError,
        r"payload is of type builtins.bytes, which JSON cannot hold",
        lambda c: c.result.set_payload(b"raw"),
    ),
    "value-set": Bad(
        "``set_`` of a set",
        InvalidValueError,
        r"payload is of type builtins.set, which JSON cannot hold",
        lambda c: c.result.set_payload({1, 2}),
    ),
    "value-nan": Bad(
        "``set_`` of NaN",
        InvalidValueError,
        r"payload is the float nan; JSON cannot hold NaN or infinity",
        lambda c: c.result.set_payload(float("nan")),
    ),
    "value-inf-nested": Bad(
        "``set_`` of a list holding infinity",
        InvalidValueError,
        r"payload\[1\] is the float -inf; JSON cannot hold NaN or infinity",
        lambda c: c.result.set_payload([1, float("-inf")]),
    ),
    "value-cycle": Bad(
        "``set_`` of a list that contains itself",
        InvalidValueError,
        r"payload\[1\] contains itself \(a cycle\); JSON cannot hold a cycle",
        lambda c: c.result.set_payload(_cycle()),
    ),
    "value-dict-cycle": Bad(
        "``set_`` of a dict that contains itself",
        InvalidValueError,
        r"contains itself \(a cycle\)",
        lambda c: c.result.set_payload(_dict_cycle()),
    ),
    "value-int-key": Bad(
        "``set_`` of a dict with a non-str key",
        InvalidValueError,
        r"payload has a key of type int \(1\); JSON object keys must be str",
        lambda c: c.result.set_payload({1: "one"}),
    ),
    "value-surrogate": Bad(
        "``set_`` of a str with a lone surrogate",
        InvalidValueError,
        r"the string holds '\\ud800' at index 2, which is not valid Unicode",
        lambda c: c.result.set_payload("ab\ud800"),
    ),
    "value-surrogate-key": Bad(
        "``set_`` of a dict key with a lone surrogate",
        InvalidValueError,
        r"which is not valid Unicode \(a lone surrogate\)",
        lambda c: c.result.set_payload({"\udcff": 1}),
    ),
    "value-naive-datetime": Bad(
        "``set_`` of a naive datetime",
        InvalidValueError,
        r"field 'payload': a naive datetime \(2026-01-01T00:00:00\) cannot be stored",
        lambda c: c.result.set_payload(datetime(2026, 1, 1)),
    ),
    "value-datetime-range": Bad(
        "``set_`` of a datetime out of range in UTC",
        InvalidValueError,
        r"is out of range once converted to UTC and cannot be stored",
        lambda c: c.result.set_payload(datetime.max.replace(tzinfo=timezone(-timedelta(hours=5)))),
    ),
    "value-nested-datetime": Bad(
        "``set_`` of a datetime inside a list",
        InvalidValueError,
        r"datetimes and statuses are stored only as a field's whole value",
        lambda c: c.result.set_payload([datetime.now(UTC)]),
    ),
    "value-huge-int": Bad(
        "``set_`` of an int of over 12000 bits (about 3,600 digits)",
        InvalidValueError,
        r"field 'payload': payload is an int of 16610 bits; ints longer than 12000 bits",
        lambda c: c.result.set_payload(10**5000),
    ),
    "value-too-deep": Bad(
        "``set_`` of lists and dicts nested more than 64 levels deep",
        InvalidValueError,
        r"field 'payload': the value nests lists and dicts more than 64 levels deep "
        r"\(payload\[0\]\[0\].*\[0\] is level 65\); at most 64 levels can be stored",
        lambda c: c.result.set_payload(_nested(65)),
    ),
    "field-name": Bad(
        "``set_`` of a field whose name is not an identifier",
        InvalidValueError,
        r"cannot set field 'bad name': a field name is an identifier",
        lambda c: c.result.setter("bad name"),
    ),
    "field-id": Bad(
        "``set_id``",
        InvalidValueError,
        r"cannot set field 'id': it identifies the object",
        lambda c: c.result.set_id("other"),
    ),
    "over-limit": Bad(
        "an event over the size limit (1 MiB by default)",
        EventTooLargeError,
        r"encodes to \d+ bytes, over the log's limit of 1048576 bytes; nothing was written",
        lambda c: c.result.set_payload("x" * (1 << 20)),
    ),
    "over-configured-limit": Bad(
        "a status change over a configured ``max_event_bytes`` (512)",
        EventTooLargeError,
        r"over the log's limit of 512 bytes; nothing was written",
        _status_change_over_limit,
        setup=_small_log,
    ),
    "build-over-limit": Bad(
        "a build whose pipeline object is over the size limit",
        EventTooLargeError,
        r"event 2 of the batch \(pipeline_result .*\) encodes to \d+ bytes",
        _big_run,
    ),
    # -- statuses and messages --------------------------------------------------------------
    "status-name": Bad(
        "a status that does not exist (``'FINISHED'``)",
        InvalidValueError,
        r"'FINISHED' is not a status; the statuses are PENDING, RUNNING, DONE, "
        r"CONFIG_ERROR, VALIDATION_ERROR, RUNTIME_ERROR, CANCELLED",
        lambda c: c.result.report_status_change(None, "FINISHED"),
    ),
    "status-int": Bad(
        "a status that is an int",
        InvalidValueError,
        r"5 is not a status; the statuses are",
        lambda c: c.result.report_status_change(None, 5),
    ),
    "status-none": Bad(
        "a status of ``None``",
        InvalidValueError,
        r"None is not a status",
        lambda c: c.result.report_status_change(None, None),
    ),
    "set-status-str": Bad(
        "``set_status`` with a str (``'DONE'``)",
        InvalidValueError,
        r"field 'status': give a PipelineTaskStatus, not str 'DONE'",
        lambda c: c.result.set_status("DONE"),
    ),
    "set-status-bad": Bad(
        "``set_status`` with a status that does not exist",
        InvalidValueError,
        r"'FINISHED' is not a status",
        lambda c: c.result.set_status("FINISHED"),
    ),
    "message-int": Bad(
        "a status message that is not a str",
        InvalidValueError,
        r"message: give a str, not int",
        lambda c: c.result.report_status_change(None, PipelineTaskStatus.RUNNING, 5),
    ),
    "set-message-int": Bad(
        "``set_message`` with an int",
        InvalidValueError,
        r"field 'message': give a str, not int",
        lambda c: c.result.set_message(5),
    ),
    "started-str": Bad(
        "``set_started`` with a str",
        InvalidValueError,
        r"field 'started': give an aware datetime or None, not str",
        lambda c: c.result.set_started("yesterday"),
    ),
    "completed-naive": Bad(
        "``set_completed`` with a naive datetime",
        InvalidValueError,
        r"field 'completed': a naive datetime .* cannot be stored",
        lambda c: c.result.set_completed(datetime(2026, 1, 1)),
    ),
    # -- ids --------------------------------------------------------------------------------
    "id-unknown-set": Bad(
        "``set_`` on an object whose id does not exist",
        ObjectNotFoundError,
        r"task_result no-such-id does not exist in .*log.jsonl",
        lambda c: EventLogTaskResult(c.storage, "no-such-id").set_payload(1),
    ),
    "id-unknown-status": Bad(
        "a status change on an object whose id does not exist",
        ObjectNotFoundError,
        r"task_result no-such-id does not exist",
        lambda c: EventLogTaskResult(c.storage, "no-such-id").report_status_change(
            None, PipelineTaskStatus.RUNNING
        ),
    ),
    "id-removed-run": Bad(
        "``set_`` on an object of a run removed by cleanup",
        ObjectNotFoundError,
        r"does not exist in .* \(never created, or its run was removed by cleanup\)",
        lambda c: c.done_result.set_payload("after cleanup"),
        setup=_cleanup_setup,
    ),
    "id-unknown-get": Bad(
        "``get_task_result`` of an id that does not exist (no error: None)",
        None,
        "None",
        lambda c: c.storage.get_task_result("no-such-id"),
    ),
    "id-unknown-run": Bad(
        "``get_pipeline_execution`` of a run that does not exist (no error: None)",
        None,
        "None",
        lambda c: c.storage.get_pipeline_execution("no-such-run"),
    ),
    "id-unknown-filter": Bad(
        "``get_task_results`` of a task execution that does not exist (no error: [])",
        None,
        "[]",
        lambda c: c.storage.get_task_results(task_execution_id="no-such-id"),
    ),
    # -- runs -------------------------------------------------------------------------------
    "run-id-empty": Bad(
        "run id empty",
        InvalidValueError,
        r"run_id: give a non-empty str, not ''",
        lambda c: c.build(""),
    ),
    "run-id-int": Bad(
        "run id not a str",
        InvalidValueError,
        r"run_id: give a non-empty str, not 42",
        lambda c: c.build(42),
    ),
    "run-id-duplicate": Bad(
        "a run id that already has an execution",
        InvalidValueError,
        r"run 'run-1' already has an execution in .*log.jsonl; give every run a new id",
        lambda c: c.build("run-1"),
    ),
    "input-data": Bad(
        "input data JSON cannot hold",
        InvalidValueError,
        r"field 'input_data': input_data\['when'\] is of type datetime.datetime",
        lambda c: c.storage.build_pipeline_execution(
            TinyPipeline(), "run-2", Runner(), Reporter(), {"when": datetime.now(UTC)}
        ),
    ),
    "input-too-deep": Bad(
        "input data nested more than 64 levels deep",
        InvalidValueError,
        r"field 'input_data': the value nests lists and dicts more than 64 levels deep",
        lambda c: c.storage.build_pipeline_execution(
            TinyPipeline(), "run-2", Runner(), Reporter(), {"rows": _nested(64)}
        ),
    ),
    "pipeline-object": Bad(
        "a pipeline object JSON cannot hold",
        InvalidValueError,
        r"field 'serializable_pipeline_object': .* builtins.set",
        _wrong_type_pipeline_object,
    ),
    "task-config": Bad(
        "a task config holding NaN",
        InvalidValueError,
        r"field 'config': config\['threshold'\] is the float nan",
        _nan_config,
    ),
    "cleanup-naive": Bad(
        "``cleanup(before=...)`` with a naive datetime",
        InvalidValueError,
        r"before: give an aware datetime or None, not datetime.datetime\(2026",
        lambda c: c.storage.cleanup(before=datetime(2026, 1, 1)),
    ),
    "cleanup-str": Bad(
        "``cleanup(before=...)`` with a str",
        InvalidValueError,
        r"before: give an aware datetime or None, not 'yesterday'",
        lambda c: c.storage.cleanup(before="yesterday"),
    ),
}


def tree(root: Path) -> dict[str, Any]:
    """Every entry under ``root``: its type, and a regular file's bytes."""
    out: dict[str, Any] = {}
    for entry in sorted(root.rglob("*")):
        info = entry.lstat()
        name = str(entry.relative_to(root))
        if entry.is_symlink():
            out[name] = ("link", os.readlink(entry))
        elif entry.is_dir():
            out[name] = "dir"
        elif entry.is_file():
            out[name] = entry.read_bytes()
        else:
            out[name] = ("special", info.st_mode)
    return out


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ctx]:
    context = Ctx(tmp_path)
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.delenv(SETTINGS_MODULE_ENV, raising=False)
    yield context
    context.storage.close()
    reset_storage_object()
    sys.modules.pop("broken_storage_module", None)


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_a_bad_input_is_refused_and_writes_nothing(ctx: Ctx, name: str) -> None:
    case = CATALOGUE[name]
    if case.setup is not None:
        case.setup(ctx)
    ctx.storage.run_index()  # the run index (a cache reads bring up to date) is current
    before = tree(ctx.tmp)
    seq = ctx.storage.log.position.seq
    if case.error is None:
        assert repr(case.run(ctx)) == case.excerpt
    else:
        with pytest.raises(case.error) as info:
            case.run(ctx)
        assert re.search(case.excerpt, str(info.value)), str(info.value)
    assert tree(ctx.tmp) == before, "something was written"
    # The storage that was open all along still works and continues the chain.
    assert ctx.storage.get_pipeline_execution("run-1") is not None
    ctx.result.set_payload(f"after {name}")
    assert ctx.storage.log.position.seq == seq + 1
    assert ctx.result.get_payload() == f"after {name}"


def test_the_catalogue_is_large_enough() -> None:
    assert len(CATALOGUE) >= 25


def _docs_rows() -> list[tuple[str, str]]:
    """(input, error) of every row of the catalogue table in the docs."""
    text = DOCS_TABLE.read_text(encoding="utf-8")
    table = text.split(".. list-table:: Bad inputs", 1)[1]
    rows = re.findall(r"^   \* - (.+)\n     - (.+)\n     - ", table, flags=re.MULTILINE)
    return [(cell.strip(), error.strip()) for cell, error in rows[1:]]  # after the header


def test_the_docs_list_the_catalogue() -> None:
    expected = [
        (case.input, f":class:`~{case.error.__module__}.{case.error.__qualname__}`")
        if case.error is not None
        else (case.input, "none")
        for case in CATALOGUE.values()
    ]
    assert _docs_rows() == expected
