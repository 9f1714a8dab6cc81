"""The web page in a real browser: Debian's Chromium driven by Playwright, against the real
server in its own process, while pipelines run in other processes.

Chromium must be at /usr/bin/chromium (``apt-get install -y chromium``; ``.ci/run``
installs it). Nothing downloads a browser. Set ``PIPELINES_EVENTS_SCREENSHOTS`` to a
directory to keep the screenshots (the docs' come from ``docs/_static``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from pipelines_events.cli import main
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.web.app import CSP
from tests.integration.web_support import CHROMIUM, CHROMIUM_ARGS, Server, cli, start_run, wait_for

WEATHER = "tests.integration.web_pipelines.Weather"
CALM = "tests.integration.web_pipelines.Calm"
HOSTILE_ID = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium with a fresh profile."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed ({CHROMIUM} is missing): the browser tests need it. "
            "Install it with: apt-get update && apt-get install -y chromium"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser tests need Playwright for Python: pip install -e '.[test]'")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.errors = errors
    try:
        yield tab
    finally:
        tab.close()
    assert errors == [], errors


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go."""
    wanted = os.environ.get("PIPELINES_EVENTS_SCREENSHOTS")
    return Path(wanted) if wanted else tmp_path


def record(log: Path, pipeline: str, run_id: str, seconds: float = 0.0) -> None:
    main(
        [
            "run",
            pipeline,
            "--log",
            str(log),
            "--run-id",
            run_id,
            "--quiet",
            "--input",
            f'{{"seconds": {seconds}}}',
        ]
    )


def wait_js(page: Any, expression: str, timeout: float = 10000) -> None:
    """Wait until the JavaScript ``expression`` is true in the page (polled as a function:
    the page's Content-Security-Policy forbids evaluating strings)."""
    page.wait_for_function(f"() => ({expression})", timeout=timeout)


def live(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate("window.pipelinesEventsLive")
    return state


def wait_live(page: Any) -> None:
    wait_js(page, "window.pipelinesEventsLive && window.pipelinesEventsLive.state === 'on'")


def in_log(log: Path, run_id: str) -> bool:
    return f'"run_id":"{run_id}"'.encode() in log.read_bytes()


# -- tests -----------------------------------------------------------------------------------


def test_run_list_shows_a_run_another_process_starts_within_a_second(
    tmp_path: Path, page: Any, shots: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "runs.jsonl"
    record(log, CALM, "calm-1")
    record(log, WEATHER, "weather-1")
    capsys.readouterr()
    with Server(log) as server:
        response = page.goto(server.base)
        assert response.headers["content-security-policy"] == CSP
        wait_live(page)
        page.evaluate("window.notReloaded = true")
        assert page.locator("#runs tbody tr").count() == 2
        worker = start_run(log, WEATHER, "weather-live", 0.1)
        try:
            wait_for(lambda: in_log(log, "weather-live"), timeout=30, step=0.01)
            seen = time.monotonic()
            row = page.locator('#runs tbody tr[data-run-id="weather-live"]')
            row.wait_for(timeout=1000)
            assert time.monotonic() - seen < 1.0
            assert page.locator("#runs tbody tr").first.get_attribute("data-run-id") == (
                "weather-live"
            )
            assert worker.wait(60) == 1, worker.stderr.read() if worker.stderr else ""
        finally:
            if worker.poll() is None:
                worker.kill()
        # The worker has ended: the row reaches the run's final counts without a reload.
        wait_js(
            page,
            "Array.from(document.querySelector('#runs tbody tr').children)"
            ".slice(4, 8).map(c => c.textContent).join(' ') === '10 1 1 12'",
        )
        assert row.locator("td.status-cell").inner_text() == "RUNTIME_ERROR"
        cells = row.locator("td")
        assert [cells.nth(i).inner_text() for i in (4, 5, 6, 7)] == ["10", "1", "1", "12"]
        assert page.evaluate("window.notReloaded") is True
        assert live(page)["anomalies"] == []
        wait_js(page, "document.getElementById('verify-badge').classList.contains('ok')")
        assert page.locator("#verify-badge").inner_text().startswith("chain verified to seq ")
        page.screenshot(path=str(shots / "web-runs.png"), full_page=True)


def test_run_page_shows_the_tree_the_traceback_and_the_timeline(
    tmp_path: Path, page: Any, shots: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "runs.jsonl"
    record(log, WEATHER, "weather-1", 0.05)
    capsys.readouterr()
    storage = EventLogPipelineResultsStorage(log)
    failed = [
        result
        for result in storage.get_task_results(run_id="weather-1")
        if result.get_status() is PipelineTaskStatus.RUNTIME_ERROR
    ]
    assert len(failed) == 1
    recorded = failed[0].get_traceback()  # the runner keeps the failure's traceback
    assert recorded.startswith("Traceback (most recent call last):")
    assert "tests/integration/web_pipelines.py" in recorded and "<b>not bold</b>" in recorded
    storage.close()
    with Server(log) as server:
        page.goto(server.base + "run?id=weather-1")
        assert page.locator("li.node").count() == 1 + 3 + 9 + 12
        assert page.locator("#run-status").inner_text() == "RUNTIME_ERROR"
        node = page.locator(f'li.node[data-id="{failed[0].get_id()}"]')
        assert node.locator("> .row .status").inner_text() == "RUNTIME_ERROR"
        assert "'n/a' is not a number" in node.locator("> pre.message").inner_text()
        trace = node.locator("> details.traceback pre")
        assert trace.is_visible()
        assert trace.inner_text().strip() == recorded.strip()
        assert node.locator("b").count() == 0  # its markup is text
        cancelled = page.locator('li.node.k-task_execution[data-status="CANCELLED"]')
        assert cancelled.count() == 1
        started = page.locator("li.node.k-task_execution[data-started]:not([data-started=''])")
        bars = page.locator("#gantt rect.bar")
        assert bars.count() == started.count() >= 8
        assert page.locator("#gantt rect.bar.s-RUNTIME_ERROR").count() == 1
        labels = page.locator("#gantt text.bar-label").all_text_contents()
        assert labels[:3] == ["oslo · fetch", "oslo · clean", "oslo · summarise"]
        assert page.locator("#gantt").bounding_box()["width"] > 500
        page.screenshot(path=str(shots / "web-run-page.png"), full_page=True)


def test_run_page_follows_a_running_run(
    tmp_path: Path, page: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "runs.jsonl"
    record(log, CALM, "calm-1")
    capsys.readouterr()
    with Server(log) as server:
        worker = start_run(log, WEATHER, "weather-live", 0.15)
        try:
            wait_for(lambda: in_log(log, "weather-live"), timeout=30, step=0.01)
            page.goto(server.base + "run?id=weather-live")
            wait_live(page)
            page.evaluate("window.notReloaded = true")
            assert page.locator("#run-status").inner_text() in ("PENDING", "RUNNING")
            wait_js(
                page,
                "document.getElementById('run-status').textContent === 'RUNTIME_ERROR'",
                timeout=30000,
            )
            assert worker.wait(60) == 1
        finally:
            if worker.poll() is None:
                worker.kill()
        wait_js(
            page,
            'document.querySelectorAll(\'li.node[data-status="PENDING"],'
            'li.node[data-status="RUNNING"]\').length === 0',
        )
        assert page.evaluate("window.notReloaded") is True
        assert page.locator("li.node").count() == 25
        assert page.locator("#gantt rect.bar").count() >= 8
        failed = page.locator('li.node.k-task_result[data-status="RUNTIME_ERROR"] > pre.message')
        assert "'n/a' is not a number" in failed.inner_text()
        assert live(page)["anomalies"] == []


def test_a_hostile_run_id_is_shown_as_text(
    tmp_path: Path, page: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "runs.jsonl"
    record(log, CALM, HOSTILE_ID)
    capsys.readouterr()
    with Server(log) as server:
        page.goto(server.base)
        wait_live(page)
        cell = page.locator("#runs tbody tr td.id")
        assert cell.inner_text() == HOSTILE_ID
        done = cli(
            "run",
            CALM,
            "--log",
            str(log),
            "--run-id",
            HOSTILE_ID + "-live",
            "--quiet",
            "--input",
            '{"seconds": 0}',
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        wait_js(page, "document.querySelectorAll('#runs tbody tr').length === 2")
        assert page.locator("#runs tbody tr td.id").first.inner_text() == HOSTILE_ID + "-live"
        assert page.locator("main img, main script").count() == 0
        assert page.evaluate("window.pwned") is None
        page.locator("#runs tbody tr td.id a").first.click()
        page.wait_for_url("**/run?id=*")
        assert page.locator("h1 .run-id").inner_text() == HOSTILE_ID + "-live"
        assert page.title() == f"run {HOSTILE_ID}-live · pipelines-events"
        assert page.locator("main img, main script").count() == 0
        page.goto(server.base + "run?id=" + quote(HOSTILE_ID, safe=""))
        assert page.locator("h1 .run-id").inner_text() == HOSTILE_ID
        assert page.evaluate("window.pwned") is None


def test_a_reconnect_after_the_server_restarts_resumes_without_duplicates(
    tmp_path: Path, page: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "runs.jsonl"
    record(log, CALM, "before")
    capsys.readouterr()
    server = Server(log).start()
    try:
        page.goto(server.base)
        wait_live(page)
        first_seq = live(page)["last"]
        page.evaluate("window.notReloaded = true")
        server.stop()
        wait_js(page, "window.pipelinesEventsLive.state !== 'on'")
        for run_id in ("while-down-1", "while-down-2"):
            done = cli(
                "run",
                CALM,
                "--log",
                str(log),
                "--run-id",
                run_id,
                "--quiet",
                "--input",
                '{"seconds": 0}',
                cwd=tmp_path,
            )
            assert done.returncode == 0, done.stderr
        server = Server(log, port=server.port).start()
        wait_js(page, "document.querySelectorAll('#runs tbody tr').length === 3", timeout=20000)
        done = cli(
            "run",
            CALM,
            "--log",
            str(log),
            "--run-id",
            "after",
            "--quiet",
            "--input",
            '{"seconds": 0}',
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        storage = EventLogPipelineResultsStorage(log, readonly=True)
        head = storage.log.position.seq
        storage.close()
        wait_js(page, f"window.pipelinesEventsLive.last === {head}", timeout=20000)
        rows = page.locator("#runs tbody tr")
        ids = [rows.nth(i).get_attribute("data-run-id") for i in range(rows.count())]
        assert ids == ["after", "while-down-2", "while-down-1", "before"]
        state = live(page)
        assert state["anomalies"] == []
        assert state["seqs"] == list(range(first_seq + 1, head + 1))
        assert page.evaluate("window.notReloaded") is True
        statuses = page.locator("#runs tbody tr td.status-cell").all_inner_texts()
        assert statuses == ["DONE"] * 4
    finally:
        server.stop()


def test_a_public_server_needs_its_token_and_then_works_live(
    tmp_path: Path, page: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "runs.jsonl"
    record(log, CALM, "calm-1")
    capsys.readouterr()
    with Server(log, "--host", "0.0.0.0", "--public") as server:
        base = f"http://127.0.0.1:{server.port}/"
        refused = page.goto(base)
        assert refused.status == 401
        assert "this server needs its token" in page.locator("body").inner_text()
        token = server.url.split("?token=", 1)[1]
        page.goto(base + "?token=" + token)
        assert page.url == base  # the token went into a cookie, out of the address
        wait_live(page)
        wait_js(page, "document.getElementById('verify-badge').classList.contains('ok')")
        done = cli(
            "run",
            CALM,
            "--log",
            str(log),
            "--run-id",
            "calm-2",
            "--quiet",
            "--input",
            '{"seconds": 0}',
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        page.locator('#runs tbody tr[data-run-id="calm-2"]').wait_for(timeout=5000)
        missing = page.goto(base + "run?id=nope")
        assert missing.status == 404
        assert page.locator("body").inner_text() == "no run has the id 'nope' in this log\n"
        assert missing.headers["content-security-policy"] == CSP
        bad = page.goto(base + "?status=BLUE")
        assert bad.status == 400
        assert page.locator("body").inner_text().startswith("parameter 'status': 'BLUE'")
    page.context.clear_cookies()


def test_the_screenshots_are_readable_pngs(shots: Path) -> None:
    """The docs' screenshots exist (taken by the tests above) and are PNG files."""
    docs = Path(__file__).resolve().parents[2] / "docs" / "_static"
    for name in ("web-runs.png", "web-run-page.png"):
        data = (docs / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
