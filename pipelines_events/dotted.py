"""Import an object by its dotted path (``package.module.Outer.Inner``).

The one place a dotted path is imported: the storage setting, the registry, the reporters'
entries and the command line all call :func:`import_dotted`, and all see the same
:class:`DottedPathError` for a bad path.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal, TypeVar, overload

from pipelines_events.errors import PipelinesEventsError

__all__ = ["DottedPathError", "import_dotted"]

_T = TypeVar("_T")

Reason = Literal["shape", "import", "type"]


class DottedPathError(PipelinesEventsError, ImportError):
    """A dotted path that does not give the object asked for.

    ``path`` is the path, ``problem`` says what is wrong with it and ``reason`` which kind
    of problem it is: ``"shape"`` (empty, no dot, not Python names), ``"import"`` (a module
    that does not import, an attribute it does not have) or ``"type"`` (not the expected
    class). The message is ``'<path>': <problem>``.
    """

    def __init__(self, path: str, problem: str, reason: Reason) -> None:
        super().__init__(f"{path!r}: {problem}")
        self.path = path
        self.problem = problem
        self.reason = reason


def _shape_problem(path: str) -> str | None:
    if not path.strip():
        return "is empty; give module.Name"
    parts = path.split(".")
    if len(parts) < 2:
        return "is not a dotted path; give module.Name"
    if not all(part.isidentifier() for part in parts):
        return "is not an importable dotted path of Python names; give module.Name"
    return None


def _import_failure(module_name: str, exc: BaseException) -> str:
    return f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}"


def _import(path: str) -> Any:
    parts = path.split(".")
    missing: tuple[str, ModuleNotFoundError] | None = None  # the shortest missing module
    for cut in range(len(parts) - 1, 0, -1):  # the longest importable module wins
        module_name = ".".join(parts[:cut])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name + ".").startswith(exc.name + "."):
                missing = (module_name, exc)  # it (or a package above it) does not exist
                continue
            raise DottedPathError(path, _import_failure(module_name, exc), "import") from exc
        except Exception as exc:  # the module exists but fails while importing
            raise DottedPathError(path, _import_failure(module_name, exc), "import") from exc
        if missing is not None and not hasattr(module, parts[cut]):
            break  # the module one part longer is what is missing: say so below
        return _attributes(path, module, parts[cut:])
    assert missing is not None  # a path of two parts or more tries one module at least
    missing_name, missing_error = missing
    raise DottedPathError(
        path, _import_failure(missing_name, missing_error), "import"
    ) from missing_error


def _attributes(path: str, obj: Any, names: list[str]) -> Any:
    owner = f"module {obj.__name__!r}"
    for name in names:
        try:
            obj = getattr(obj, name)
        except AttributeError:
            raise DottedPathError(path, f"{owner} has no attribute {name!r}", "import") from None
        owner = repr(getattr(obj, "__qualname__", name))
    return obj


def _kind(obj: Any) -> str:
    return f"the class {obj.__qualname__}" if isinstance(obj, type) else type(obj).__name__


@overload
def import_dotted(path: str) -> Any: ...
@overload
def import_dotted(path: str, expected: type[_T]) -> type[_T]: ...
def import_dotted(path: str, expected: type[Any] | None = None) -> Any:
    """The object at dotted ``path``; with ``expected``, a class that is a subclass of it
    (``object``: any class).

    Raises :class:`DottedPathError` saying what is wrong: the path is empty, has no dot or
    is not Python names; a module does not import (with the import's own error); an
    attribute is missing; the object is not the expected class.
    """
    problem = _shape_problem(path)
    if problem is not None:
        raise DottedPathError(path, problem, "shape")
    obj = _import(path)
    if expected is None:
        return obj
    if not isinstance(obj, type):
        if expected is object:
            raise DottedPathError(path, f"is not a class (it is {_kind(obj)})", "type")
    elif issubclass(obj, expected):
        return obj
    base = f"{expected.__module__}.{expected.__qualname__}"
    raise DottedPathError(path, f"is not a subclass of {base} (it is {_kind(obj)})", "type")
