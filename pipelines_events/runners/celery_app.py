"""The Celery app of the runner: where the broker is, the options the runner fixes or
refuses, and the configuration the settings name now."""

from __future__ import annotations

import os
import re
import threading
from typing import Any, Final

from celery import Celery
from kombu.connection import Connection

from pipelines_events.conf import CELERY_BROKER_SETTING, CELERY_CONFIG_SETTING, settings
from pipelines_events.errors import ImproperlyConfigured
from pipelines_events.runners import error_message

BROKER_ENV: Final = CELERY_BROKER_SETTING
"""The environment variable read for the broker URL when the setting is None."""

DEFAULT_BROKER_URL: Final = "redis://localhost:6379/0"
"""The broker URL when neither the setting nor the environment variable gives one."""

TASK_NAME: Final = "pipelines_events.run_task_result"
"""The name of the Celery task that runs one task result."""

_FIXED_CONFIG: Final[dict[str, Any]] = {
    # A message is acknowledged once its task result has ended (or was skipped): a
    # worker that dies mid-task leaves it to be delivered again.
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "task_serializer": "json",
    "accept_content": ["json"],
    "broker_connection_retry_on_startup": True,
    # A broker that cannot be reached fails the run within seconds, not minutes.
    "task_publish_retry_policy": {
        "max_retries": 2,
        "interval_start": 0,
        "interval_step": 0.5,
        "interval_max": 1,
    },
    "broker_connection_timeout": 2,
}


_KEEPS_REDELIVERY: Final = (
    "the runner sets it (a message is acknowledged once its task result has ended, so that "
    "the task result of a lost worker runs again)"
)
_LOCKED_CONFIG: Final[dict[str, str]] = {
    "broker_url": f"give the broker URL as {CELERY_BROKER_SETTING}",
    "task_acks_late": _KEEPS_REDELIVERY,
    "task_reject_on_worker_lost": _KEEPS_REDELIVERY,
    "task_serializer": "the runner's messages are JSON",
    "accept_content": "the runner's messages are JSON",
}
"""The Celery settings :data:`~pipelines_events.conf.CELERY_CONFIG_SETTING` may not
give, and why."""


def broker_url() -> str:
    """The broker URL: the setting, else the environment variable, else the default."""
    value, source = settings.lookup(CELERY_BROKER_SETTING)
    if value is None:
        value = os.environ.get(BROKER_ENV, "").strip() or DEFAULT_BROKER_URL
        source = f"the environment variable {BROKER_ENV}"
    if not isinstance(value, str) or not value.strip():
        raise ImproperlyConfigured(
            f"{CELERY_BROKER_SETTING} (from {source}): give a broker URL such as "
            f"{DEFAULT_BROKER_URL!r}, not {value!r}"
        )
    problem = _broker_url_problem(value)
    if problem is not None:
        raise ImproperlyConfigured(
            f"{CELERY_BROKER_SETTING} (from {source}): {_without_password(value)!r} is not "
            f"a broker URL Celery can use: {problem}"
        )
    return value


def _without_password(url: str) -> str:
    """``url`` with the password of its user info shown as ``**``."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1**@", url)


def _broker_url_problem(url: str) -> str | None:
    """Why Celery cannot use broker URL ``url`` (its scheme, port or Redis database),
    found without connecting; None when it can."""
    if "://" not in url:
        return "it has no scheme (such as 'redis://')"
    try:
        connection: Any = Connection(url)  # type: ignore[no-untyped-call]  # kombu is untyped
        driver = connection.transport.driver_type  # looks the transport up, reads the port
    except KeyError as exc:
        return str(exc.args[0]) if exc.args else error_message(exc)
    except ValueError as exc:
        return str(exc)
    database = str(connection.virtual_host or "/")
    if driver == "redis" and database != "/" and not database.isdigit():
        return f"the Redis database is a number, not {database!r}"
    return None


def _wanted_config() -> dict[str, Any]:
    extra, source = settings.lookup(CELERY_CONFIG_SETTING)
    if not isinstance(extra, dict) or not all(isinstance(key, str) for key in extra):
        raise ImproperlyConfigured(
            f"{CELERY_CONFIG_SETTING} (from {source}): give a dict of Celery setting -> "
            f"value, not {extra!r}"
        )
    locked = sorted(key for key in extra if key in _LOCKED_CONFIG)
    if locked:
        raise ImproperlyConfigured(
            f"{CELERY_CONFIG_SETTING} (from {source}): "
            + "; ".join(f"{key!r}: {_LOCKED_CONFIG[key]}" for key in locked)
        )
    return {**_FIXED_CONFIG, "broker_url": broker_url(), **extra}


app: Any = Celery("pipelines_events", set_as_current=False)
"""The Celery app of the runner: the one workers start with
(``celery -A pipelines_events.runners.celery worker``)."""

_applied: dict[str, Any] = {}
_config_lock = threading.Lock()


def configure_app() -> Any:
    """Give :data:`app` the configuration the settings name now (broker URL, the
    runner's fixed options, then :data:`~pipelines_events.conf.CELERY_CONFIG_SETTING`);
    returns the app."""
    wanted = _wanted_config()
    with _config_lock:
        if wanted != _applied:
            if _applied:
                _forget_connections()
            app.conf.update(wanted)
            _applied.clear()
            _applied.update(wanted)
    return app


def _forget_connections() -> None:
    """Forget the app's broker connection pool and result backend, so that a new
    configuration is the one used (Celery keeps them, made from the first one). They
    are not closed: kombu shares producer pools between apps by broker URL."""
    # What Celery itself does in a forked child (Celery._after_fork), plus the backend.
    app._after_fork()
    app._backend_cache = None
    app._local = threading.local()


__all__ = ["BROKER_ENV", "DEFAULT_BROKER_URL", "TASK_NAME", "app", "broker_url", "configure_app"]
