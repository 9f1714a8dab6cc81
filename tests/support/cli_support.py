"""What the command-line tests share: the command run in this process (:func:`run_cli`), or
in a new interpreter with a settings module of its own (:func:`run_cli_process`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines_events.cli import main
from pipelines_events.results import helpers

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_storage() -> Iterator[None]:
    """No storage cached across tests (a module uses it with ``autouse``)."""
    helpers.reset_storage_object()
    yield
    helpers.reset_storage_object()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``pipelines-events ARGV`` in this process: its exit status, stdout and stderr."""
    capsys.readouterr()
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def run_cli_process(
    *argv: str,
    cwd: Path = ROOT,
    settings_dir: Path | None = None,
    settings_module: str | None = None,
    env: dict[str, str] | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``python -m pipelines_events ARGV`` in a new interpreter (60 s at most), with the
    settings module ``settings_module`` found in ``settings_dir`` and ``env`` added."""
    environment = dict(os.environ)
    if settings_module is not None:
        environment["PIPELINES_SETTINGS_MODULE"] = settings_module
    if settings_dir is not None:
        environment["PYTHONPATH"] = os.pathsep.join([str(settings_dir), str(ROOT)])
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pipelines_events", *argv],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=60,
        check=check,
    )
