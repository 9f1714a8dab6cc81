"""A real broker and real Celery workers for the Celery runner's tests and benchmark.

:class:`Cluster` starts ``redis-server`` on a free loopback port and ``celery worker``
processes (``python -m celery -A pipelines_events.runners.celery worker``), each told
where the log is by a settings module written for it (``PIPELINES_SETTINGS_MODULE``),
and stops them all on :meth:`Cluster.close`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REDIS_SERVER = "redis-server"
INSTALL_HINT = "apt-get install -y redis-server"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_binary() -> str:
    """The path of ``redis-server``; RuntimeError naming the package when it is missing."""
    found = shutil.which(REDIS_SERVER) or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if found is None:
        raise RuntimeError(
            f"the Celery runner's tests need {REDIS_SERVER}, which is not installed: {INSTALL_HINT}"
        )
    return found


@dataclass
class Worker:
    """One ``celery worker`` process (and its pool) in its own process group."""

    name: str
    queues: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@dataclass
class Cluster:
    """A broker on a free port, workers, and the settings they share."""

    directory: Path
    storage: tuple[str, dict[str, Any]]
    visibility_timeout: float = 30.0
    port: int = 0
    redis: subprocess.Popen[bytes] | None = None
    workers: list[Worker] = field(default_factory=list)

    @property
    def broker_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def backend_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/1"

    def settings(self) -> dict[str, Any]:
        """The settings every process of the cluster uses (the tests' own too)."""
        return {
            "PIPELINES_PIPELINES_RESULTS_STORAGE": self.storage,
            "PIPELINES_CELERY_BROKER_URL": self.broker_url,
            "PIPELINES_CELERY_CONFIG": {
                "result_backend": self.backend_url,
                "broker_transport_options": {
                    "visibility_timeout": self.visibility_timeout,
                    # look for messages past their visibility timeout every second
                    "unacked_restore_interval": 1,
                    "unacked_restore_throttle": 1,
                },
                "worker_hijack_root_logger": False,
            },
        }

    # -- redis ------------------------------------------------------------------------------

    def start_redis(self) -> None:
        binary = redis_binary()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        out = (self.directory / "redis.log").open("wb")
        self.redis = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        deadline = time.monotonic() + 10
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return
            if self.redis.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "redis-server did not start: "
                    + (self.directory / "redis.log").read_text(errors="replace")
                )
            time.sleep(0.05)

    # -- workers ----------------------------------------------------------------------------

    def write_settings_module(self) -> str:
        """A module holding :meth:`settings`, importable by the workers; its name."""
        name = "celery_cluster_settings"
        lines = [f"{key} = {value!r}" for key, value in self.settings().items()]
        (self.directory / f"{name}.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return name

    def start_worker(
        self,
        name: str,
        queues: Sequence[str] = ("celery",),
        concurrency: int = 1,
        pool: str = "prefork",
    ) -> Worker:
        module = self.write_settings_module()
        env = dict(os.environ)
        env["PIPELINES_SETTINGS_MODULE"] = module
        env["PYTHONPATH"] = os.pathsep.join(
            [str(self.directory), str(ROOT), env.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep)
        env.pop("PIPELINES_CELERY_BROKER_URL", None)
        log = self.directory / f"worker-{name}.log"
        out = log.open("wb")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "pipelines_events.runners.celery",
                "worker",
                "-n",
                f"{name}@%h",
                "-c",
                str(concurrency),
                "-Q",
                ",".join(queues),
                "--pool",
                pool,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "info",
            ],
            cwd=self.directory,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        worker = Worker(name, ",".join(queues), process, log)
        self.workers.append(worker)
        return worker

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Return once every worker says it is ready."""
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            while " ready." not in worker.output():
                if worker.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker {worker.name} did not start:\n{worker.output()}")
                time.sleep(0.05)

    def pool_pids(self, worker: Worker) -> list[int]:
        """The pids of ``worker``'s pool processes (its children)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    stat = (entry / "stat").read_text()
                    ppid = int(stat.rsplit(")", 1)[1].split()[1])
                    if ppid == worker.process.pid:
                        found.append(int(entry.name))
        return found

    def stop_worker(self, worker: Worker, timeout: float = 10.0) -> None:
        """Warm shutdown (SIGTERM to its group), then SIGKILL after ``timeout``."""
        if worker.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.process.wait(5)

    def close(self) -> None:
        for worker in self.workers:
            self.stop_worker(worker)
        self.workers.clear()
        if self.redis is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.redis.pid, signal.SIGKILL)
            self.redis.wait(5)
            self.redis = None


@contextlib.contextmanager
def cluster(
    directory: Path,
    storage: tuple[str, dict[str, Any]],
    workers: Sequence[tuple[str, Sequence[str]]] = (("w1", ("celery",)), ("w2", ("celery",))),
    visibility_timeout: float = 30.0,
) -> Iterator[Cluster]:
    """A started :class:`Cluster` with ``workers`` (name, queues), stopped at the end."""
    running = Cluster(directory, storage, visibility_timeout)
    try:
        running.start_redis()
        for name, queues in workers:
            running.start_worker(name, queues)
        running.wait_ready()
        yield running
    finally:
        running.close()
