"""The documentation builds with warnings as errors, and its examples run.

Every ``.. code-block:: python`` of every page under ``docs/`` is executed, in page
order, in one Python process per page whose working directory is a new temporary
directory (so the blocks of a page share their names, files and settings, and pages
share nothing). A comment just before a block changes what happens to it:

``.. test: file NAME``
    the block is written to the file ``NAME`` instead of being executed (a module that
    later blocks import, a settings module, a pipeline the command line runs); further
    blocks marked with the same ``NAME`` on the page are appended to it;
``.. test: file NAME indent=N``
    the same, with the block indented by ``N`` spaces (the methods of a class whose
    start an earlier block holds);
``.. test: run``
    (a ``console`` block) every line that starts with ``$`` is run by bash, in order with
    the page's other blocks, and must exit 0; ``pipelines-events`` and ``python`` run
    with this interpreter;
``.. test: run exit=N``
    the same, and the commands must exit ``N``.

Console blocks without a marker (installing the package, say) are not run. Sphinx is
in the ``docs`` extra, which CI installs: without it the build test fails.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the quick subset (-m 'not slow') leaves these out

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

_DIRECTIVE = re.compile(r"^(\s*)\.\. code-block::\s*(\S+)\s*$")
_MARKER = re.compile(r"^\s*\.\. test:\s*(.*?)\s*$")
_MARKERS = re.compile(r"^(file \S+( indent=\d+)?|run|run exit=\d+)$")


@dataclass(frozen=True)
class Step:
    """One thing a page's example run does: ``python``, ``file`` or ``run``."""

    action: str
    line: int
    text: str
    arg: str = ""


def steps_of(path: Path) -> list[Step]:
    """The steps of a page: its python blocks, files and commands, in page order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    steps: list[Step] = []
    marker: tuple[str, int] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        found = _MARKER.match(line)
        if found:
            if not _MARKERS.match(found.group(1)):
                raise ValueError(f"{path}:{index + 1}: unknown test marker {found.group(1)!r}")
            marker = (found.group(1), index + 1)
            index += 1
            continue
        directive = _DIRECTIVE.match(line)
        if not directive:
            if line.strip() and marker is not None:
                raise ValueError(f"{path}:{marker[1]}: the test marker is not before a code-block")
            index += 1
            continue
        indent, language = len(directive.group(1)), directive.group(2)
        index += 1
        while index < len(lines) and re.match(r"^\s+:[\w-]+:", lines[index]):
            index += 1  # the directive's options
        start = index
        while index < len(lines) and (
            not lines[index].strip() or len(lines[index]) - len(lines[index].lstrip()) > indent
        ):
            index += 1
        body = textwrap.dedent("\n".join(lines[start:index])).strip("\n")
        first = start + next((n for n, text in enumerate(lines[start:index]) if text.strip()), 0)
        steps.extend(_step(path, language, marker, first + 1, body))
        marker = None
    if marker is not None:
        raise ValueError(f"{path}:{marker[1]}: the test marker is not before a code-block")
    return steps


def _step(
    path: Path, language: str, marker: tuple[str, int] | None, line: int, body: str
) -> list[Step]:
    what = marker[0] if marker else ""
    if what.startswith("file "):
        name, _, indent = what[5:].partition(" indent=")
        pad = " " * int(indent or 0)
        return [Step("file", line, textwrap.indent(body, pad) + "\n", name)]
    if what.startswith("run"):
        if language != "console":
            raise ValueError(f"{path}:{line}: '.. test: run' marks a console block")
        code = what.partition("exit=")[2] or "0"
        return [
            Step("run", line + number, text[2:], code)
            for number, text in enumerate(body.splitlines())
            if text.startswith("$ ")
        ]
    if language == "python":
        return [Step("python", line, body)]
    return []


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.rst"))


def _pages_with_steps() -> list[Path]:
    return [page for page in pages() if steps_of(page)]


# The program that runs a page's steps, given as JSON on stdin. Commands run in bash with
# ``pipelines-events`` and ``python`` on the PATH as this interpreter.
_DRIVER = r"""
import atexit, json, os, shutil, subprocess, sys, tempfile

page, steps = json.load(sys.stdin)
bin_dir = tempfile.mkdtemp(prefix="docs-bin-")
atexit.register(shutil.rmtree, bin_dir, True)
for name, command in (
    ("pipelines-events", f'exec "{sys.executable}" -m pipelines_events "$@"'),
    ("python", f'exec "{sys.executable}" "$@"'),
    ("python3", f'exec "{sys.executable}" "$@"'),
):
    with open(os.path.join(bin_dir, name), "w") as script:
        script.write(f"#!/bin/sh\n{command}\n")
    os.chmod(os.path.join(bin_dir, name), 0o755)
env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
namespace = {"__name__": "__main__"}
written = set()
for step in steps:
    where = f"{page}:{step['line']}"
    if step["action"] == "file":
        with open(step["arg"], "a" if step["arg"] in written else "w", encoding="utf-8") as out:
            out.write(step["text"])
        written.add(step["arg"])
    elif step["action"] == "python":
        code = compile("\n" * (step["line"] - 1) + step["text"], page, "exec")
        exec(code, namespace)
        sys.stdout.flush()
    else:
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", step["text"]],
            env=env, capture_output=True, text=True, timeout=300,
        )
        if done.returncode != int(step["arg"]):
            sys.exit(
                f"{where}: `{step['text']}` exited {done.returncode}, not {step['arg']}\n"
                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
            )
"""


@pytest.mark.parametrize("page", _pages_with_steps(), ids=lambda p: str(p.relative_to(DOCS)))
def test_examples_run(page: Path, tmp_path: Path) -> None:
    steps = [asdict(step) for step in steps_of(page)]
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("PIPELINES_SETTINGS_MODULE", "DJANGO_SETTINGS_MODULE")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    env["COLUMNS"] = "100"
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER],
        input=json.dumps([str(page), steps]),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{page}:\n{done.stdout}\n{done.stderr}"


def test_every_tutorial_snippet_runs_on_its_own(tmp_path: Path) -> None:
    """Each python block of the tutorial, saved as a new file and run by a new interpreter
    in a fresh directory (after the page's earlier files and commands), with no
    PYTHONPATH: what a reader typing it in gets. A block that leans on the names of an
    earlier one, or on a storage it did not configure, fails here."""
    page = DOCS / "tutorial.rst"
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("PIPELINES_SETTINGS_MODULE", "DJANGO_SETTINGS_MODULE", "PYTHONPATH")
    }
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for number, step in enumerate(steps_of(page)):
        where = f"{page}:{step.line}"
        if step.action == "file":
            with (tmp_path / step.arg).open("a", encoding="utf-8") as out:
                out.write(step.text)
            continue
        if step.action == "run":
            argv = ["bash", "-o", "pipefail", "-c", step.text]
        else:
            snippet = tmp_path / f"snippet_{number}.py"
            snippet.write_text(step.text + "\n", encoding="utf-8")
            argv = [sys.executable, snippet.name]
        before = set(tmp_path.iterdir())
        done = subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        expected = int(step.arg or 0) if step.action == "run" else 0
        assert done.returncode == expected, f"{where}:\n{done.stdout}\n{done.stderr}"
        if step.action == "python":
            assert done.stdout.strip(), f"{where}: the snippet printed nothing"
            created = {p.name for p in set(tmp_path.iterdir()) - before}
            # A log's run index (a cache beside it) may appear when a snippet reads runs.
            created = {name for name in created if not name.endswith(".jsonl.index")}
            assert created <= {snippet.name, "__pycache__"}, f"{where}: it created {created}"


def test_docs_build_without_warnings(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(tmp_path / "html"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"sphinx failed:\n{done.stdout}\n{done.stderr}"
    assert (tmp_path / "html" / "index.html").is_file()


def test_the_marker_parser(tmp_path: Path) -> None:
    page = tmp_path / "page.rst"
    page.write_text(
        textwrap.dedent(
            """\
            Title
            =====

            .. test: file mod.py

            .. code-block:: python

               X = 1

            .. code-block:: python
               :caption: run me

               import mod
               print(mod.X)

            .. test: run exit=1

            .. code-block:: console

               $ pipelines-events verify --log x.jsonl
               FAILED: ...

            .. code-block:: console

               $ not run
            """
        ),
        encoding="utf-8",
    )
    assert steps_of(page) == [
        Step("file", 8, "X = 1\n", "mod.py"),
        Step("python", 13, "import mod\nprint(mod.X)"),
        Step("run", 20, "pipelines-events verify --log x.jsonl", "1"),
    ]
    page.write_text(".. test: skip\n\n.. code-block:: python\n\n   pass\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown test marker 'skip'"):
        steps_of(page)


def test_the_settings_reference_lists_every_setting_and_storage_kwarg() -> None:
    from pipelines_events.conf import DEFAULTS
    from pipelines_events.results.eventlog import EventLogPipelineResultsStorage

    text = (DOCS / "reference" / "settings.rst").read_text(encoding="utf-8")
    names = [*DEFAULTS, *inspect.signature(EventLogPipelineResultsStorage).parameters]
    assert [name for name in names if f"``{name}``" not in text] == []
