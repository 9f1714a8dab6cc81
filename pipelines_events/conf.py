"""Settings of pipelines-events, read through :data:`settings`.

A setting is looked up, first match wins, in:

1. values given to :meth:`Settings.override_settings` (innermost first), then to
   :meth:`Settings.configure`;
2. the module named by the environment variable ``PIPELINES_SETTINGS_MODULE``
   (imported on first use, once);
3. Django's settings, when Django is configured (``django.conf.settings.configured``);
   only ``PIPELINES_*`` names are read there, and Django is never asked to configure itself;
4. :data:`DEFAULTS`.

:attr:`Settings.generation` changes whenever what a lookup could return changes through
this module (``configure``, an override entered or left, another settings module, Django
becoming configured, Django's ``setting_changed`` signal for a ``PIPELINES_*`` name), so
caches built from settings know when to rebuild.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys
import threading
from collections.abc import Callable, Iterator
from types import ModuleType, TracebackType
from typing import Any, Final, TypeVar, cast

from pipelines_events.errors import ImproperlyConfigured

__all__ = [
    "DEFAULTS",
    "SETTINGS_MODULE_ENV",
    "STORAGE_SETTING",
    "Settings",
    "override_settings",
    "settings",
    "storage_setting",
    "validate_storage_setting",
]

SETTINGS_MODULE_ENV: Final = "PIPELINES_SETTINGS_MODULE"
"""The environment variable naming a Python module of settings."""

STORAGE_SETTING: Final = "PIPELINES_PIPELINES_RESULTS_STORAGE"
"""The setting choosing the results storage: a dotted class path or ``(path, kwargs)``."""

CELERY_BROKER_SETTING: Final = "PIPELINES_CELERY_BROKER_URL"
"""The broker URL of the Celery runner's app (None: the environment variable of the same
name, else ``redis://localhost:6379/0``)."""

CELERY_CONFIG_SETTING: Final = "PIPELINES_CELERY_CONFIG"
"""More configuration of the Celery runner's app: a dict of Celery setting -> value."""

DEFAULTS: Final[dict[str, Any]] = {
    STORAGE_SETTING: (
        "pipelines_events.results.eventlog.EventLogPipelineResultsStorage",
        {"path": "pipelines-events.jsonl"},
    ),
    CELERY_BROKER_SETTING: None,
    CELERY_CONFIG_SETTING: {},
}
"""Every setting there is, with its default value."""

_F = TypeVar("_F", bound=Callable[..., Any])


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Final = _Missing()


def _unknown(name: str) -> str:
    known = ", ".join(sorted(DEFAULTS))
    return f"unknown setting {name!r}; the settings are: {known}"


class _Override:
    """What :meth:`Settings.override_settings` returns: a context manager and decorator."""

    def __init__(self, owner: Settings, values: dict[str, Any]) -> None:
        owner._check_names(values, "override_settings()")
        self._owner = owner
        self._values = values
        self._tokens: list[object] = []

    def __enter__(self) -> None:
        token = object()
        self._tokens.append(token)
        self._owner._push(token, dict(self._values))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._owner._pop(self._tokens.pop())

    def __call__(self, func: _F) -> _F:
        if isinstance(func, type):
            raise TypeError(
                "override_settings decorates functions only; "
                "use it as a context manager or fixture for classes"
            )
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_inner(*args: Any, **kwargs: Any) -> Any:
                with self:
                    return await func(*args, **kwargs)

            return cast(_F, async_inner)

        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return cast(_F, inner)


class Settings:
    """The settings lookup; use the module's :data:`settings` instance.

    ``settings.NAME`` returns the value of setting ``NAME``; a name that is not a
    setting raises :class:`AttributeError`.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._configured: dict[str, Any] = {}
        self._overrides: list[tuple[object, dict[str, Any]]] = []
        self._generation = 0
        self._module_name: str | None = None
        self._module: ModuleType | None = None
        self._django_seen = False

    # -- values given in code ---------------------------------------------------------

    def configure(self, **values: Any) -> None:
        """Set settings in code; they win over every other source but overrides.

        Calls add up: a later call replaces only the names it gives. Raises
        :class:`ImproperlyConfigured` for a name that is not a setting.
        """
        self._check_names(values, "configure()")
        with self._lock:
            self._configured.update(values)
            self._generation += 1

    def override_settings(self, **values: Any) -> _Override:
        """Settings for a block or a test function, undone on leaving it.

        Works as ``with settings.override_settings(NAME=value):`` and as a decorator of
        plain and ``async`` functions; overrides nest, the innermost wins.
        """
        return _Override(self, values)

    def reset(self) -> None:
        """Forget every :meth:`configure` value and active override (for tests)."""
        with self._lock:
            self._configured.clear()
            self._overrides.clear()
            self._generation += 1

    def _check_names(self, values: dict[str, Any], where: str) -> None:
        for name in values:
            if name not in DEFAULTS:
                raise ImproperlyConfigured(f"{where}: {_unknown(name)}")

    def _push(self, token: object, values: dict[str, Any]) -> None:
        with self._lock:
            self._overrides.append((token, values))
            self._generation += 1

    def _pop(self, token: object) -> None:
        with self._lock:
            for index in range(len(self._overrides) - 1, -1, -1):
                if self._overrides[index][0] is token:
                    del self._overrides[index]
                    break
            self._generation += 1

    # -- the other sources --------------------------------------------------------------

    def _env_module_name(self) -> str | None:
        return os.environ.get(SETTINGS_MODULE_ENV, "").strip() or None

    def _refresh(self) -> None:
        """Notice a new settings module or Django becoming configured (holding the lock)."""
        name = self._env_module_name()
        if name != self._module_name:
            self._module_name = name
            self._module = None
            self._generation += 1
        if not self._django_seen and _django_settings() is not None:
            self._django_seen = True
            self._generation += 1
            _watch_django(self._bump, f"{__name__}:{id(self)}")

    def _bump(self) -> None:
        with self._lock:
            self._generation += 1

    def _settings_module(self) -> ModuleType | None:
        with self._lock:
            self._refresh()
            name = self._module_name
            if name is None:
                return None
            if self._module is None:
                try:
                    self._module = importlib.import_module(name)
                except Exception as exc:
                    raise ImproperlyConfigured(
                        f"the environment variable {SETTINGS_MODULE_ENV} names the module "
                        f"{name!r}, which cannot be imported: {type(exc).__name__}: {exc}"
                    ) from exc
            return self._module

    @property
    def generation(self) -> int:
        """A number that changes whenever the settings may have changed."""
        with self._lock:
            self._refresh()
            return self._generation

    # -- lookup -------------------------------------------------------------------------

    def lookup(self, name: str) -> tuple[Any, str]:
        """The value of setting ``name`` and where it came from (for messages).

        Raises :class:`AttributeError` for a name that is not a setting, and
        :class:`ImproperlyConfigured` when the settings module cannot be imported.
        """
        if name not in DEFAULTS:
            raise AttributeError(_unknown(name))
        with self._lock:
            for _token, values in reversed(self._overrides):
                if name in values:
                    return values[name], "settings.override_settings()"
            if name in self._configured:
                return self._configured[name], "settings.configure()"
        module = self._settings_module()
        if module is not None:
            value = getattr(module, name, _MISSING)
            if value is not _MISSING:
                return value, f"settings module {module.__name__!r} ({SETTINGS_MODULE_ENV})"
        django_settings = _django_settings()
        if django_settings is not None and name.startswith("PIPELINES_"):
            value = getattr(django_settings, name, _MISSING)
            if value is not _MISSING:
                return value, "Django settings"
        return DEFAULTS[name], "default"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.lookup(name)[0]

    def __dir__(self) -> Iterator[str]:
        yield from super().__dir__()
        yield from DEFAULTS

    def __repr__(self) -> str:
        return f"<{type(self).__name__} generation={self._generation}>"


def _django_settings() -> Any:
    """``django.conf.settings`` when Django is configured, else None.

    Settings can only be configured once ``django.conf`` is imported, so a Django that
    is not in :data:`sys.modules` is not configured: it is neither imported nor set up.
    """
    module = sys.modules.get("django.conf")
    if module is None:
        return None
    django_settings = getattr(module, "settings", None)
    if getattr(django_settings, "configured", False) is not True:
        return None
    return django_settings


def _watch_django(bump: Callable[[], None], uid: str) -> None:
    """Bump the generation when Django reports a ``PIPELINES_*`` setting changed."""
    signals = importlib.import_module("django.core.signals")

    def receiver(*, setting: str = "", **kwargs: Any) -> None:
        if setting.startswith("PIPELINES_"):
            bump()

    signals.setting_changed.connect(receiver, weak=False, dispatch_uid=uid)


settings: Final = Settings()
"""The settings of pipelines-events."""

override_settings: Final = settings.override_settings
"""``settings.override_settings``, importable on its own for tests."""


def validate_storage_setting(value: Any, source: str = "") -> tuple[str, dict[str, Any]]:
    """``value`` of :data:`STORAGE_SETTING` as ``(dotted_path, kwargs)``.

    Raises :class:`ImproperlyConfigured` naming the setting, ``source`` and the problem.
    The kwargs are a copy.
    """
    where = f"{STORAGE_SETTING} (from {source})" if source else STORAGE_SETTING

    def bad(problem: str) -> ImproperlyConfigured:
        return ImproperlyConfigured(f"{where}: {problem}")

    if isinstance(value, str):
        path, kwargs = value, {}
    elif isinstance(value, tuple | list):
        if len(value) != 2:
            raise bad(
                "give a 2-tuple (dotted class path, kwargs dict), "
                f"not a {type(value).__name__} of {len(value)} items"
            )
        path, kwargs = value
        if not isinstance(path, str):
            raise bad(
                f"the first item must be the dotted class path as a str, "
                f"not {type(path).__name__} {path!r}"
            )
        if not isinstance(kwargs, dict):
            raise bad(
                f"the second item must be a dict of kwargs for the class, "
                f"not {type(kwargs).__name__} {kwargs!r}"
            )
        for key in kwargs:
            if not isinstance(key, str):
                raise bad(f"the kwargs keys must be str, not {type(key).__name__} {key!r}")
    else:
        raise bad(
            "give a dotted class path (str) or a 2-tuple (dotted class path, kwargs dict), "
            f"not {type(value).__name__} {value!r}"
        )
    if not path.strip():
        raise bad("the dotted class path is empty")
    parts = path.split(".")
    if len(parts) < 2:
        raise bad(f"{path!r} is not a dotted class path: give 'module.ClassName'")
    if not all(part.isidentifier() for part in parts):
        raise bad(f"{path!r} is not a dotted class path of Python names: give 'module.ClassName'")
    return path, dict(kwargs)


def storage_setting() -> tuple[str, dict[str, Any]]:
    """The validated :data:`STORAGE_SETTING`: ``(dotted_path, kwargs)``."""
    value, source = settings.lookup(STORAGE_SETTING)
    return validate_storage_setting(value, source)
