"""Helpers of the web page's tests: the real server in a process of its own, pipelines run
by the command line in other processes, a Chromium driven by Playwright."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env.pop("PIPELINES_SETTINGS_MODULE", None)
    return env


class Server:
    """``pipelines-events serve`` in a subprocess; :attr:`url` once it listens."""

    def __init__(self, log: Path, *args: str, port: int = 0) -> None:
        self.log = log
        self.args = list(args)
        self.port = port
        self.url = ""
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 20.0) -> Server:
        command = [sys.executable, "-m", "pipelines_events", "serve", "--log", str(self.log)]
        command += ["--port", str(self.port), *self.args]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_env(),
            cwd=self.log.parent,
        )
        found = threading.Event()

        def read() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)
                if line.startswith("serving ") and not found.is_set():
                    self.url = line.split(" at ", 1)[1].split()[0]
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(timeout) or not self.url:
            self.stop()
            raise AssertionError(f"the server did not start: {''.join(self.output)}")
        self.port = int(self.url.split("/")[2].rsplit(":", 1)[1])
        return self

    @property
    def base(self) -> str:
        """The URL without the token query."""
        return self.url.split("?", 1)[0]

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it; then wait."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m pipelines_events ARGS`` in another process."""
    return subprocess.run(
        [sys.executable, "-m", "pipelines_events", *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=cwd,
        timeout=120,
        check=False,
    )


def start_run(log: Path, pipeline: str, run_id: str, seconds: float) -> subprocess.Popen[str]:
    """Run ``pipeline`` into ``log`` in another process (not waited for)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines_events",
            "run",
            pipeline,
            "--log",
            str(log),
            "--run-id",
            run_id,
            "--input",
            json.dumps({"seconds": seconds}),
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=log.parent,
    )


class Got:
    """A response: status, headers (lower-case names), body."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


def get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Got:
    """One request, without following redirects."""

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with opener.open(request, timeout=30) as response:
            return Got(
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as exc:
        return Got(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def wait_for(check: Any, timeout: float = 10.0, step: float = 0.05) -> Any:
    """Call ``check`` until it returns something true; that value (AssertionError on time)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {check}")
        time.sleep(step)
