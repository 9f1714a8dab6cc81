"""One function imports a dotted path, with one error saying what is wrong with it."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from pipelines_events.dotted import DottedPathError, import_dotted
from pipelines_events.errors import LogError
from pipelines_events.registry import Registry
from pipelines_events.results.base import PipelineResultsStorage
from pipelines_events.results.memory import MemoryPipelineResultsStorage


def test_a_class_a_nested_attribute_and_an_expected_base_are_found() -> None:
    assert import_dotted("pipelines_events.registry.Registry") is Registry
    assert import_dotted("pipelines_events.registry.Registry.load_task") is Registry.load_task
    path = "pipelines_events.results.memory.MemoryPipelineResultsStorage"
    assert import_dotted(path, PipelineResultsStorage) is MemoryPipelineResultsStorage
    assert import_dotted(path, object) is MemoryPipelineResultsStorage


@pytest.mark.parametrize(
    ("path", "expected", "reason", "problem"),
    [
        ("", None, "shape", "is empty; give module.Name"),
        ("  ", None, "shape", "is empty; give module.Name"),
        ("Storage", None, "shape", "is not a dotted path; give module.Name"),
        ("1abc.X", None, "shape", "is not an importable dotted path of Python names"),
        ("tests.t.<locals>.P", None, "shape", "is not an importable dotted path of Python"),
        (
            "no_such_module_xyz.Storage",
            None,
            "import",
            "cannot import module 'no_such_module_xyz': ModuleNotFoundError: "
            "No module named 'no_such_module_xyz'",
        ),
        (
            "pipelines_events.no_such_module.Storage",
            None,
            "import",
            "cannot import module 'pipelines_events.no_such_module': ModuleNotFoundError",
        ),
        (
            "pipelines_events.demo.NoSuchPipeline",
            None,
            "import",
            "module 'pipelines_events.demo' has no attribute 'NoSuchPipeline'",
        ),
        (
            "pipelines_events.registry.Registry.nope",
            None,
            "import",
            "'Registry' has no attribute 'nope'",
        ),
        (
            "pipelines_events.errors.LogError",
            PipelineResultsStorage,
            "type",
            "is not a subclass of pipelines_events.results.base.PipelineResultsStorage "
            "(it is the class LogError)",
        ),
        (
            "pipelines_events.dotted.import_dotted",
            PipelineResultsStorage,
            "type",
            "(it is function)",
        ),
        ("pipelines_events.dotted.__all__", object, "type", "is not a class (it is list)"),
    ],
)
def test_a_bad_path_raises_one_error_saying_what_is_wrong(
    path: str, expected: type | None, reason: str, problem: str
) -> None:
    with pytest.raises(DottedPathError) as caught:
        if expected is None:
            import_dotted(path)
        else:
            import_dotted(path, expected)
    assert caught.value.path == path
    assert caught.value.reason == reason
    assert problem in caught.value.problem
    assert str(caught.value) == f"{path!r}: {caught.value.problem}"
    assert isinstance(caught.value, ImportError)


def test_a_module_failing_while_importing_is_named_with_its_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"pe_broken_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text("raise RuntimeError('boom')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)

    with pytest.raises(DottedPathError) as caught:
        import_dotted(f"{name}.Thing")

    assert caught.value.problem == f"cannot import module {name!r}: RuntimeError: boom"
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_the_error_is_one_of_the_library() -> None:
    from pipelines_events.errors import PipelinesEventsError

    assert issubclass(DottedPathError, PipelinesEventsError)
    assert not issubclass(DottedPathError, LogError)
