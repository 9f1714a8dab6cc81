"""Run a page's examples and write their real output back into the page.

    python docs/_tools/refresh_outputs.py docs/tutorial.rst [more pages...]

Works on the blocks ``tests/docs/test_docs.py`` runs (see its docstring for the markers), in a
new temporary directory per page, laid out as on a terminal 80 columns wide:

- in a ``console`` block marked ``.. test: run``, the lines after each ``$`` command are
  replaced by what the command printed (stdout and stderr);
- a ``.. code-block:: text`` right after a ``python`` block is replaced by what that
  block printed.

Review the diff before committing: ids and times change on every run.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIRECTIVE = re.compile(r"^(\s*)\.\. code-block::\s*(\S+)\s*$")
MARKER = re.compile(r"^\s*\.\. test:\s*(.*?)\s*$")
COLUMNS = "80"


def _bin_dir() -> str:
    directory = tempfile.mkdtemp(prefix="docs-bin-")
    for name, command in (
        ("pipelines-events", f'exec "{sys.executable}" -m pipelines_events "$@"'),
        ("python", f'exec "{sys.executable}" "$@"'),
        ("python3", f'exec "{sys.executable}" "$@"'),
    ):
        script = Path(directory, name)
        script.write_text(f"#!/bin/sh\n{command}\n")
        script.chmod(0o755)
    return directory


def _run(command: str, env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    return [line.rstrip() for line in done.stdout.splitlines()]


def refresh(page: Path) -> None:
    page = page.resolve()
    lines = page.read_text(encoding="utf-8").splitlines()
    work = Path(tempfile.mkdtemp(prefix="docs-page-"))
    os.chdir(work)
    sys.path.insert(0, str(work))
    env = dict(os.environ, COLUMNS=COLUMNS, PYTHONPATH=f"{work}{os.pathsep}{ROOT}")
    env["PYTHONUNBUFFERED"] = "1"  # interleave stdout and stderr as a terminal shows them
    # Laid out as on a terminal (tables, not the tab-separated lines of a pipe), unstyled.
    env["TTY_COMPATIBLE"], env["TERM"] = "1", "dumb"
    env["PATH"] = _bin_dir() + os.pathsep + env.get("PATH", "")
    os.environ["COLUMNS"] = COLUMNS
    namespace: dict[str, object] = {"__name__": "__main__"}
    out: list[str] = []
    marker = ""
    printed: list[str] | None = None
    written: set[str] = set()
    index = 0
    while index < len(lines):
        line = lines[index]
        found = MARKER.match(line)
        directive = DIRECTIVE.match(line)
        out.append(line)
        index += 1
        if found:
            marker = found.group(1)
            continue
        if not directive:
            continue
        indent, language = len(directive.group(1)), directive.group(2)
        while index < len(lines) and re.match(r"^\s+:[\w-]+:", lines[index]):
            out.append(lines[index])
            index += 1
        start = index
        while index < len(lines) and (
            not lines[index].strip() or len(lines[index]) - len(lines[index].lstrip()) > indent
        ):
            index += 1
        body = lines[start:index]
        while body and not body[-1].strip():
            body.pop()
        trailing = lines[start + len(body) : index]
        lead = next((text for text in body if text.strip()), "   ")
        pad = lead[: len(lead) - len(lead.lstrip())]
        code = "\n".join(text[len(pad) :] for text in body)
        if marker.startswith("file "):
            name, _, indent = marker[5:].partition(" indent=")
            text = textwrap.indent(textwrap.dedent(code).strip("\n"), " " * int(indent or 0))
            with open(name, "a" if name in written else "w", encoding="utf-8") as file:
                file.write(text + "\n")
            written.add(name)
        elif language == "python" and not marker:
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                exec(compile(code.strip("\n"), str(page), "exec"), namespace)
            printed = buffer.getvalue().rstrip("\n").splitlines()
        elif language == "text" and printed is not None:
            body = [""] + [f"{pad}{text}".rstrip() for text in printed]
            printed = None
        elif language == "console" and marker.startswith("run"):
            new: list[str] = [""]
            for text in body:
                if text.strip().startswith("$ "):
                    new.append(text)
                    new.extend(f"{pad}{output}".rstrip() for output in _run(text.strip()[2:], env))
            body = new
        if language != "text":
            printed = printed if language == "python" else None
        out.extend(body)
        out.extend(trailing)
        marker = ""
    page.write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"{page}: outputs refreshed (ran in {work})")


if __name__ == "__main__":
    for name in sys.argv[1:]:
        refresh(Path(name))
