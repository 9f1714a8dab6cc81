"""The storage helpers: choosing, creating and caching the storage, and delegating to it."""

from __future__ import annotations

import abc
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pipelines_events.conf import SETTINGS_MODULE_ENV, settings
from pipelines_events.errors import ImproperlyConfigured
from pipelines_events.results import helpers
from pipelines_events.results.base import (
    BuildablePipeline,
    PipelineDigest,
    PipelineExecution,
    PipelineResult,
    PipelineResultsStorage,
    TaskExecution,
    TaskResult,
)
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.results.helpers import get_pipeline_results_storage, reset_storage_object
from pipelines_events.status import PipelineTaskStatus

EVENTLOG = "pipelines_events.results.eventlog.EventLogPipelineResultsStorage"


class RecordingStorage(PipelineResultsStorage):
    """Records every call; ``marker`` is a file written when the storage is created."""

    created: ClassVar[list[RecordingStorage]] = []
    slow: ClassVar[float] = 0.0

    def __init__(self, label: str = "", marker: Path | None = None) -> None:
        time.sleep(self.slow)
        self.label = label
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.closed = False
        if marker is not None:
            marker.write_text("created", encoding="utf-8")
        RecordingStorage.created.append(self)

    def _record(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Note the call; the answer is a marker the helper must hand back unchanged."""
        self.calls.append((name, args, kwargs))
        return (name, "answer")

    def build_pipeline_execution(
        self,
        pipeline: BuildablePipeline,
        run_id: str,
        runner: object,
        reporter: object,
        input_data: Any,
        build_all: bool = True,
    ) -> PipelineExecution:
        args = (pipeline, run_id, runner, reporter, input_data)
        answer: PipelineExecution = self._record(
            "build_pipeline_execution", *args, build_all=build_all
        )
        return answer

    def get_pipeline_digest(self) -> PipelineDigest:
        answer: PipelineDigest = self._record("get_pipeline_digest")
        return answer

    def get_pipeline_executions(
        self, pipeline_id: str | None = None
    ) -> Sequence[PipelineExecution]:
        answer: Sequence[PipelineExecution] = self._record(
            "get_pipeline_executions", pipeline_id=pipeline_id
        )
        return answer

    def get_pipeline_execution(self, run_id: str) -> PipelineExecution | None:
        answer: PipelineExecution | None = self._record("get_pipeline_execution", run_id)
        return answer

    def get_pipeline_results(
        self, run_id: str | None = None, pipeline_id: str | None = None
    ) -> Sequence[PipelineResult]:
        answer: Sequence[PipelineResult] = self._record(
            "get_pipeline_results", run_id=run_id, pipeline_id=pipeline_id
        )
        return answer

    def get_pipeline_result(self, _id: str) -> PipelineResult | None:
        answer: PipelineResult | None = self._record("get_pipeline_result", _id)
        return answer

    def get_task_executions(
        self, run_id: str | None = None, pipeline_result_id: str | None = None
    ) -> Sequence[TaskExecution]:
        answer: Sequence[TaskExecution] = self._record(
            "get_task_executions", run_id=run_id, pipeline_result_id=pipeline_result_id
        )
        return answer

    def get_task_execution(self, _id: str) -> TaskExecution | None:
        answer: TaskExecution | None = self._record("get_task_execution", _id)
        return answer

    def get_task_results(
        self,
        run_id: str | None = None,
        pipeline_result_id: str | None = None,
        task_execution_id: str | None = None,
    ) -> Sequence[TaskResult]:
        answer: Sequence[TaskResult] = self._record(
            "get_task_results",
            run_id=run_id,
            pipeline_result_id=pipeline_result_id,
            task_execution_id=task_execution_id,
        )
        return answer

    def get_task_result(self, _id: str) -> TaskResult | None:
        answer: TaskResult | None = self._record("get_task_result", _id)
        return answer

    def cleanup(self, before: datetime | None = None) -> list[str]:
        answer: list[str] = self._record("cleanup", before=before)
        return answer

    def close(self) -> None:
        self.closed = True


class NotAStorage:
    def __init__(self, path: str = "") -> None:
        self.path = path


def not_a_class() -> None:
    """A function where a class is expected."""


RECORDING = f"{__name__}.RecordingStorage"


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(SETTINGS_MODULE_ENV, raising=False)
    settings.reset()
    reset_storage_object()
    RecordingStorage.created.clear()
    yield
    reset_storage_object()
    settings.reset()
    RecordingStorage.slow = 0.0


def recording(label: str = "") -> RecordingStorage:
    storage = get_pipeline_results_storage()
    assert isinstance(storage, RecordingStorage)
    assert storage.label == label
    return storage


# -- delegation --------------------------------------------------------------------------

PIPELINE = object()
RUNNER = object()
REPORTER = None  # a reporter would hear the PENDING objects of the (fake) run
BEFORE = datetime(2026, 11, 1, tzinfo=UTC)

DELEGATIONS: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], tuple[Any, ...]]] = [
    (
        helpers.build_pipeline_execution,
        (PIPELINE, "run-1", RUNNER, REPORTER, {"n": 1}),
        {"build_all": False},
        ((PIPELINE, "run-1", RUNNER, REPORTER, {"n": 1}), {"build_all": False}),
    ),
    (
        helpers.build_pipeline_execution,
        (PIPELINE, "run-1", RUNNER, REPORTER, None),
        {},
        ((PIPELINE, "run-1", RUNNER, REPORTER, None), {"build_all": True}),
    ),
    (helpers.get_pipeline_digest, (), {}, ((), {})),
    (helpers.get_pipeline_executions, (), {}, ((), {"pipeline_id": None})),
    (helpers.get_pipeline_executions, ("p",), {}, ((), {"pipeline_id": "p"})),
    (helpers.get_pipeline_execution, ("run-1",), {}, (("run-1",), {})),
    (helpers.get_pipeline_results, (), {}, ((), {"run_id": None, "pipeline_id": None})),
    (
        helpers.get_pipeline_results,
        ("r",),
        {"pipeline_id": "p"},
        ((), {"run_id": "r", "pipeline_id": "p"}),
    ),
    (helpers.get_pipeline_result, ("pr-1",), {}, (("pr-1",), {})),
    (
        helpers.get_task_executions,
        (),
        {"pipeline_result_id": "pr"},
        ((), {"run_id": None, "pipeline_result_id": "pr"}),
    ),
    (helpers.get_task_execution, ("te-1",), {}, (("te-1",), {})),
    (
        helpers.get_task_results,
        ("r",),
        {"task_execution_id": "te"},
        ((), {"run_id": "r", "pipeline_result_id": None, "task_execution_id": "te"}),
    ),
    (helpers.get_task_result, ("tr-1",), {}, (("tr-1",), {})),
    (helpers.cleanup_task_results, (), {}, ((), {"before": None})),
    (helpers.cleanup_task_results, (BEFORE,), {}, ((), {"before": BEFORE})),
]


@pytest.mark.parametrize(
    ("helper", "args", "kwargs", "expected"),
    DELEGATIONS,
    ids=[f"{d[0].__name__}-{i}" for i, d in enumerate(DELEGATIONS)],
)
def test_each_helper_delegates_to_the_configured_storage(
    helper: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    expected: tuple[tuple[Any, ...], dict[str, Any]],
) -> None:
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE=RECORDING)
    storage = recording()
    method = "cleanup" if helper is helpers.cleanup_task_results else helper.__name__
    assert helper(*args, **kwargs) == (method, "answer")
    assert storage.calls == [(method, *expected)]


def test_helpers_cover_the_public_contract() -> None:
    names = {
        "get_pipeline_results_storage",
        "reset_storage_object",
        "build_pipeline_execution",
        "get_pipeline_digest",
        "get_pipeline_executions",
        "get_pipeline_execution",
        "get_pipeline_results",
        "get_pipeline_result",
        "get_task_executions",
        "get_task_execution",
        "get_task_results",
        "get_task_result",
        "cleanup_task_results",
    }
    assert names <= set(helpers.__all__)
    delegated = {d[0].__name__ for d in DELEGATIONS}
    assert delegated == names - {"get_pipeline_results_storage", "reset_storage_object"}


# -- creating and caching ------------------------------------------------------------------


def test_storage_is_created_once_and_cached() -> None:
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE=(RECORDING, {"label": "one"}))
    first = recording("one")
    assert get_pipeline_results_storage() is first
    helpers.get_pipeline_digest()
    assert len(RecordingStorage.created) == 1
    assert first.calls == [("get_pipeline_digest", (), {})]


def test_reset_closes_and_forgets_the_storage() -> None:
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE=RECORDING)
    first = recording()
    reset_storage_object()
    assert first.closed
    second = recording()
    assert second is not first
    assert not second.closed
    reset_storage_object()
    reset_storage_object()  # nothing cached: nothing to do
    assert second.closed


def test_concurrent_first_calls_create_one_storage() -> None:
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE=RECORDING)
    RecordingStorage.slow = 0.05
    barrier = threading.Barrier(8)
    got: list[PipelineResultsStorage] = []

    def call() -> None:
        barrier.wait()
        got.append(get_pipeline_results_storage())

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(RecordingStorage.created) == 1
    assert got == [RecordingStorage.created[0]] * 8


def test_configure_replaces_the_cached_storage() -> None:
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE=(RECORDING, {"label": "one"}))
    first = recording("one")
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE=(RECORDING, {"label": "two"}))
    second = recording("two")
    assert first.closed
    assert get_pipeline_results_storage() is second


def test_override_switches_the_storage_and_back() -> None:
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE=(RECORDING, {"label": "outer"}))
    outer = recording("outer")
    with settings.override_settings(
        PIPELINES_PIPELINES_RESULTS_STORAGE=(RECORDING, {"label": "inner"})
    ):
        inner = recording("inner")
        assert outer.closed
        assert get_pipeline_results_storage() is inner
    assert not inner.closed  # closed by the next call, not on leaving the block
    assert recording("outer") is not outer
    assert inner.closed


def test_another_settings_module_switches_the_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"pe_helpers_settings_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(
        f"PIPELINES_PIPELINES_RESULTS_STORAGE = ({RECORDING!r}, {{'label': 'module'}})\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    with settings.override_settings(
        PIPELINES_PIPELINES_RESULTS_STORAGE=(RECORDING, {"label": "override"})
    ):
        recording("override")
        monkeypatch.setenv(SETTINGS_MODULE_ENV, name)
        recording("override")  # an override still wins, but the storage was rebuilt
    assert recording("module").label == "module"
    assert len(RecordingStorage.created) == 3


def test_a_bad_setting_does_not_stick(tmp_path: Path) -> None:
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE=(RECORDING, {"label": "good"}))
    good = recording("good")
    with (
        settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE="no_such_module_xyz.S"),
        pytest.raises(ImproperlyConfigured, match="no_such_module_xyz"),
    ):
        helpers.get_pipeline_digest()
    assert good.closed
    assert recording("good") is not good


# -- errors ----------------------------------------------------------------------------------


def test_bad_setting_shape_is_reported_by_the_helpers() -> None:
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE=(RECORDING, "label"))
    with pytest.raises(
        ImproperlyConfigured,
        match=r"^PIPELINES_PIPELINES_RESULTS_STORAGE \(from settings\.configure\(\)\): "
        r"the second item must be a dict",
    ):
        get_pipeline_results_storage()
    assert RecordingStorage.created == []


def test_module_that_does_not_import() -> None:
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE="no_such_module_xyz.Storage")
    with pytest.raises(
        ImproperlyConfigured,
        match=r"^PIPELINES_PIPELINES_RESULTS_STORAGE: 'no_such_module_xyz\.Storage': "
        r"cannot import module 'no_such_module_xyz': ModuleNotFoundError: "
        r"No module named 'no_such_module_xyz'",
    ):
        get_pipeline_results_storage()


def test_module_that_fails_while_importing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"pe_broken_storage_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(
        "import no_such_dependency_xyz\n\nclass Storage: ...\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE=f"{name}.Storage")
    with pytest.raises(
        ImproperlyConfigured,
        match=rf"PIPELINES_PIPELINES_RESULTS_STORAGE: '{name}\.Storage': cannot import module "
        rf"'{name}': ModuleNotFoundError: No module named 'no_such_dependency_xyz'",
    ) as info:
        get_pipeline_results_storage()
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_attribute_missing_in_the_module() -> None:
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE=f"{__name__}.NoSuchStorage")
    with pytest.raises(
        ImproperlyConfigured,
        match=rf"^PIPELINES_PIPELINES_RESULTS_STORAGE: '{__name__}\.NoSuchStorage': "
        rf"module '{__name__}' has no attribute 'NoSuchStorage'$",
    ):
        get_pipeline_results_storage()


@pytest.mark.parametrize(
    ("path", "what"),
    [
        (f"{__name__}.NotAStorage", "the class NotAStorage"),
        (f"{__name__}.not_a_class", "function"),
        (f"{__name__}.EVENTLOG", "str"),
        ("collections.OrderedDict", "the class OrderedDict"),
    ],
)
def test_object_that_is_not_a_storage_class(path: str, what: str) -> None:
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE=path)
    with pytest.raises(
        ImproperlyConfigured,
        match=r"^PIPELINES_PIPELINES_RESULTS_STORAGE: '[\w.]+': is not a subclass of "
        rf"pipelines_events\.results\.base\.PipelineResultsStorage \(it is {what}\)$",
    ):
        get_pipeline_results_storage()


def test_the_base_storage_class_loads_and_its_methods_say_they_are_not_implemented() -> None:
    settings.configure(
        PIPELINES_PIPELINES_RESULTS_STORAGE="pipelines_events.results.base.PipelineResultsStorage"
    )
    assert type(get_pipeline_results_storage()) is PipelineResultsStorage
    with pytest.raises(
        NotImplementedError,
        match=r"^PipelineResultsStorage does not implement get_pipeline_executions\(\)",
    ):
        helpers.get_pipeline_executions()


class AbstractStorage(PipelineResultsStorage, abc.ABC):
    """A storage that declares an abstract method of its own."""

    @abc.abstractmethod
    def connect(self) -> None: ...


def test_a_storage_class_with_abstract_methods_of_its_own_is_refused() -> None:
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE=f"{__name__}.AbstractStorage")
    with pytest.raises(
        ImproperlyConfigured,
        match=r"PIPELINES_PIPELINES_RESULTS_STORAGE: .*: is abstract: it does not implement "
        r"connect$",
    ):
        get_pipeline_results_storage()


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"colour": "red"}, r"got an unexpected keyword argument 'colour'"),
        ({"label": "x", "extra": 1}, r"got an unexpected keyword argument 'extra'"),
    ],
)
def test_kwargs_the_class_does_not_take_create_nothing(
    tmp_path: Path, kwargs: dict[str, Any], problem: str
) -> None:
    marker = tmp_path / "marker"
    settings.configure(
        PIPELINES_PIPELINES_RESULTS_STORAGE=(RECORDING, {"marker": marker, **kwargs})
    )
    with pytest.raises(
        ImproperlyConfigured,
        match=rf"^PIPELINES_PIPELINES_RESULTS_STORAGE: '{RECORDING}': the kwargs do not fit "
        rf"RecordingStorage\(label='', marker=None\): {problem} \(kwargs given: marker, ",
    ):
        get_pipeline_results_storage()
    assert RecordingStorage.created == []
    assert list(tmp_path.iterdir()) == []


def test_missing_required_kwarg(tmp_path: Path) -> None:
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE=f"{__name__}.NeedsPath")
    with pytest.raises(
        ImproperlyConfigured,
        match=r"the kwargs do not fit NeedsPath\(path\): "
        r"missing a required argument: 'path' \(kwargs given: none\)",
    ):
        get_pipeline_results_storage()


class NeedsPath(RecordingStorage):
    def __init__(self, path: str) -> None:
        super().__init__(label=path)


# -- the event-log storage ---------------------------------------------------------------


@dataclass
class OneTask:
    task_id: str = "tests.OneTask"
    pipeline_task: str = "only"

    def get_serializable_config(self) -> Any:
        return {}

    def get_iterator(self) -> Any:
        return None

    def get_serializable_task_object(self, obj: Any) -> Any:
        return obj


class OnePipeline:
    def get_id(self) -> str:
        return "tests.OnePipeline"

    def get_iterator(self) -> Any:
        return None

    def get_serializable_pipeline_object(self, obj: Any) -> Any:
        return obj

    def get_build_tasks(self) -> Sequence[OneTask]:
        return [OneTask()]


def test_kwargs_point_the_log_at_a_path(tmp_path: Path) -> None:
    log = tmp_path / "x.jsonl"
    settings.configure(PIPELINES_PIPELINES_RESULTS_STORAGE=(EVENTLOG, {"path": log}))
    storage = get_pipeline_results_storage()
    assert isinstance(storage, EventLogPipelineResultsStorage)
    assert storage.log.path == log
    execution = helpers.build_pipeline_execution(OnePipeline(), "run-1", object(), None, {})
    assert execution.get_status() is PipelineTaskStatus.PENDING
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines
    assert all(json.loads(line)["run_id"] == "run-1" for line in lines)
    reset_storage_object()  # a new storage reads the run back from the same log
    again = helpers.get_pipeline_execution("run-1")
    assert again is not None
    assert again.get_pipeline_id() == "tests.OnePipeline"
    assert len(helpers.get_task_results(run_id="run-1")) == 1


def test_default_storage_is_the_event_log_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    storage = get_pipeline_results_storage()
    assert isinstance(storage, EventLogPipelineResultsStorage)
    helpers.build_pipeline_execution(OnePipeline(), "run-1", object(), None, None)
    assert (tmp_path / "pipelines-events.jsonl").stat().st_size > 0


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"colour": "red"}, r"the kwargs do not fit .*unexpected keyword argument 'colour'"),
        ({"log": "y.jsonl"}, r"the kwargs do not fit .*unexpected keyword argument 'log'"),
        (
            {"durability": "sometimes"},
            r"EventLogPipelineResultsStorage refused its kwargs: LogOpenError: "
            r"durability must be",
        ),
        (
            {"mode": 0o1777},
            r"EventLogPipelineResultsStorage refused its kwargs: LogOpenError: "
            r"mode must be",
        ),
    ],
)
def test_bad_event_log_kwargs_write_nothing(
    tmp_path: Path, kwargs: dict[str, Any], problem: str
) -> None:
    settings.configure(
        PIPELINES_PIPELINES_RESULTS_STORAGE=(EVENTLOG, {"path": tmp_path / "x.jsonl", **kwargs})
    )
    with pytest.raises(
        ImproperlyConfigured,
        match=rf"^PIPELINES_PIPELINES_RESULTS_STORAGE: '{EVENTLOG}': {problem}",
    ):
        get_pipeline_results_storage()
    assert list(tmp_path.iterdir()) == []
