"""The web page over HTTP: the real server (``pipelines-events serve`` in its own process),
its pages and JSON, its refusals, its token, its live stream; and that it writes nothing."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines_events.cli import main
from pipelines_events.log.jsonl import JsonlEventLog
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.web.app import CSP
from pipelines_events.web.live import LogTail
from tests.integration.web_support import Server, cli, get

WEATHER = "tests.integration.web_pipelines.Weather"
CALM = "tests.integration.web_pipelines.Calm"
HOSTILE_ID = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">&amp;\''


def record(log: Path, pipeline: str, run_id: str, capsys: pytest.CaptureFixture[str]) -> None:
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
            '{"seconds": 0}',
        ]
    )
    capsys.readouterr()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """A log of six runs (Weather fails, Calm is DONE, one hostile id) and its server."""
    log = tmp_path_factory.mktemp("web") / "runs.jsonl"
    for index, (pipeline, run_id) in enumerate(
        [
            (WEATHER, "w-1"),
            (CALM, "c-1"),
            (WEATHER, "w-2"),
            (CALM, "c-2"),
            (CALM, "c-3"),
            (WEATHER, HOSTILE_ID),
        ]
    ):
        status = main(
            [
                "run",
                pipeline,
                "--log",
                str(log),
                "--run-id",
                run_id,
                "--quiet",
                "--input",
                '{"seconds": 0}',
                "--format",
                "json",
            ]
        )
        assert status == (1 if pipeline == WEATHER else 0), index
    with Server(log) as server:
        yield server, log


def _cli_json(log: Path, *args: str) -> object:
    done = cli(*args, "--log", str(log), "--format", "json", cwd=log.parent)
    return json.loads(done.stdout)


# -- pages and JSON --------------------------------------------------------------------------


def test_json_endpoints_give_the_records_of_the_cli(served: tuple[Server, Path]) -> None:
    server, log = served
    runs = get(server.base + "api/runs").json()
    assert runs["total"] == 6 and runs["page"] == 1 and runs["pages"] == 1
    assert runs["runs"] == _cli_json(log, "runs")  # both newest first
    shown = get(server.base + "api/run?id=w-2").json()
    assert shown == _cli_json(log, "show", "w-2")
    object_id = shown["children"][1]["id"]
    history = get(server.base + "api/history?id=" + object_id).json()
    assert history == _cli_json(log, "history", object_id)
    assert [c["action"] for c in history][:1] == ["created"]
    report = get(server.base + "api/verify").json()
    cli_report = _cli_json(log, "verify")
    assert {k: v for k, v in report.items() if k != "badge"} == cli_report
    assert report["badge"] == f"chain verified to seq {report['head_seq']}"
    digest = get(server.base + "api/digest").json()
    assert [(d["pipeline_id"], d["total_runs"], d["total_failure"]) for d in digest] == [
        ("tests.integration.web_pipelines.Calm", 3, 0),
        ("tests.integration.web_pipelines.Weather", 9, 3),
    ]


def test_run_list_filters_and_pages_newest_first(served: tuple[Server, Path]) -> None:
    server, _ = served

    def ids(query: str) -> list[str]:
        return [run["run_id"] for run in get(server.base + "api/runs?" + query).json()["runs"]]

    assert ids("") == [HOSTILE_ID, "c-3", "c-2", "w-2", "c-1", "w-1"]
    assert ids("per_page=2&page=2") == ["c-2", "w-2"]
    assert ids("per_page=4&page=2") == ["c-1", "w-1"]
    assert ids("status=RUNTIME_ERROR") == [HOSTILE_ID, "w-2", "w-1"]
    assert ids("status=done&per_page=2&page=2") == ["c-1"]
    assert ids("pipeline=" + CALM) == ["c-3", "c-2", "c-1"]
    assert ids("since=2999-01-01T00:00:00Z") == []
    assert ids("until=2999-01-01") == ids("")
    page = get(server.base + "api/runs?status=RUNTIME_ERROR&per_page=2").json()
    assert (page["total"], page["pages"]) == (3, 2)
    counts = get(server.base + "api/runs?per_page=1").json()["runs"][0]["task_results"]
    assert counts == {"done": 10, "failed": 1, "cancelled": 1, "total": 12}
    html = get(server.base + "?status=RUNTIME_ERROR&per_page=2").text
    assert (
        'page 1 of 2 · <span id="run-total">3</span> runs' in html
        and 'rel="next"' in html
        and 'rel="prev"' not in html
    )


def test_pages_show_the_tree_history_digest_and_badge(served: tuple[Server, Path]) -> None:
    server, _ = served
    page = get(server.base + "run?id=w-1").text
    assert page.count('class="node k-task_execution') == 9
    assert page.count('class="node k-task_result') == 12
    assert "lima rainfall reading 1: &#x27;n/a&#x27; is not a number" in page
    assert "RUNTIME_ERROR" in page and "CANCELLED" in page
    assert 'data-stream="/events?run=w-1"' in page
    shown = get(server.base + "api/run?id=w-1").json()
    history = get(server.base + "object?id=" + shown["id"]).text
    assert "status: PENDING → RUNNING" in history and "status: RUNNING → RUNTIME_ERROR" in history
    digest = get(server.base + "digest").text
    assert "tests.integration.web_pipelines.Weather" in digest
    verify = get(server.base + "verify").text
    assert "chain verified to seq" in verify
    head = cli("head", "--log", str(served[1]), cwd=served[1].parent).stdout.strip()
    matched = get(server.base + "api/verify?expect=" + head).json()
    assert matched["ok"] and matched["expected"] == head and "matches" in matched["badge"]
    wrong = head.split(":")[0] + ":" + "0" * 64
    refused = get(server.base + "api/verify?expect=" + wrong).json()
    assert not refused["ok"] and refused["head_mismatch"]
    assert refused["badge"].startswith("does not match the given head")


def test_hostile_ids_and_messages_are_text(served: tuple[Server, Path]) -> None:
    server, _ = served
    from urllib.parse import quote

    for url in (server.base, server.base + "run?id=" + quote(HOSTILE_ID, safe="")):
        page = get(url).text
        assert "<script>window" not in page and "<img" not in page
        assert "&lt;script&gt;window.pwned=1&lt;/script&gt;&lt;img src=x onerror=" in page
        assert "&amp;amp;&#x27;" in page
        assert page.count("<script") == 1  # the page's own /static/app.js
    assert get(server.base + "api/run?id=" + quote(HOSTILE_ID, safe="")).json()["run_id"] == (
        HOSTILE_ID
    )


def test_control_characters_are_shown_as_escapes(tmp_path: Path) -> None:
    log = tmp_path / "hostile.jsonl"
    assert (
        main(
            [
                "run",
                "tests.support.cli_pipelines.Hostile",
                "--log",
                str(log),
                "--quiet",
                "--run-id",
                "h\x1b[2J\u202e-1",
            ]
        )
        == 1
    )
    with Server(log) as server:
        page = get(server.base).text
        assert "h\\x1b[2J\\u202e-1" in page and "\x1b" not in page and "\u202e" not in page
        page = get(server.base + "run?id=h%1B%5B2J%E2%80%AE-1").text
        assert "boom x[/bold][red]\\x1b]0;pwned\\x07" in page
        assert "\x1b" not in page and "\x00" not in page and "\u202e" not in page


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("nowhere", 404, "no page at /nowhere; the run list is at /"),
        ("run?id=nope", 404, "no run has the id 'nope' in this log"),
        ("api/run?id=nope", 404, "no run has the id 'nope' in this log"),
        ("run", 400, "parameter 'id' is missing; give it"),
        ("object?id=zz-nothing", 404, "zz-nothing"),
        ("?status=BLUE", 400, "parameter 'status': 'BLUE' is not a status; the statuses are"),
        ("?page=0", 400, "parameter 'page': give a number from 1 to 1000000000, not 0"),
        ("api/runs?page=-1", 400, "parameter 'page': give a number from 1 to 1000000000, not -1"),
        ("?page=1" + "0" * 30, 400, "parameter 'page': give a number from 1 to 1000000000, not 1"),
        ("?page=%E0%A5%A9", 400, "parameter 'page': '\u0969' is not a whole number"),
        ("events?after=-3", 400, "parameter 'after': give a number from 0 to"),
        ("?per_page=501", 400, "parameter 'per_page': give a number from 1 to 500, not 501"),
        ("?since=yesterday", 400, "parameter 'since': 'yesterday' is not a time"),
        ("?since=2026-02-01&until=2026-01-01", 400, "parameter 'since' is after 'until'"),
        ("?colour=red", 400, "unknown parameter 'colour'; this page takes: status, pipeline"),
        ("?page=1&page=2", 400, "parameter 'page' is given twice; give it once"),
        ("digest?x=1", 400, "unknown parameter 'x'; this page takes: none"),
        ("api/verify?expect=12:abc", 400, "parameter 'expect': '12:abc' is not a head"),
        ("events?after=x", 400, "parameter 'after': 'x' is not a whole number"),
        ("static/../app.py", 404, "no page at"),
        ("static/secret.py", 404, "no file 'secret.py' here; the files are app.js, app.css"),
        ("run?id=" + "x" * 5000, 400, "parameter 'id' is longer than 4096 characters"),
    ],
)
def test_bad_paths_and_parameters_get_a_plain_message(
    served: tuple[Server, Path], path: str, status: int, message: str
) -> None:
    got = get(served[0].base + path)
    assert got.status == status
    assert got.headers["content-type"].startswith("text/plain")
    assert message in got.text
    assert "Traceback" not in got.text and "<" not in got.text.replace("<script", "")
    assert got.headers["content-security-policy"] == CSP


def test_every_response_has_the_security_headers(served: tuple[Server, Path]) -> None:
    for path in ("", "run?id=c-1", "api/runs", "static/app.js", "static/app.css", "verify"):
        got = get(served[0].base + path)
        assert got.status == 200, path
        assert got.headers["content-security-policy"] == CSP
        assert got.headers["x-content-type-options"] == "nosniff"
        assert got.headers["x-frame-options"] == "DENY"
    assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP


def test_nothing_writes(served: tuple[Server, Path]) -> None:
    server, _ = served
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in ("", "api/runs", "events"):
            got = get(server.base + path, method=method)
            assert (got.status, got.text) == (
                405,
                "this site is read-only: it answers GET and HEAD only\n",
            )


def test_host_header_must_be_loopback(served: tuple[Server, Path]) -> None:
    got = get(served[0].base, headers={"Host": "attacker.example:80"})
    assert got.status == 400
    assert "the Host header names 'attacker.example', not this machine's loopback" in got.text
    assert get(served[0].base, headers={"Host": f"localhost:{served[0].port}"}).status == 200


def test_serving_leaves_the_log_and_its_directory_as_they_were(tmp_path: Path) -> None:
    log = tmp_path / "runs.jsonl"
    assert main(["run", CALM, "--log", str(log), "--quiet", "--input", '{"seconds": 0}']) == 0
    with log.open("ab") as handle:
        handle.write(b'{"type":"set","torn')  # a writer that crashed mid-line
    before = log.read_bytes()
    files = sorted(p.name for p in tmp_path.iterdir())
    with Server(log) as server:
        for path in ("", "api/runs", "digest", "verify", "api/verify"):
            assert get(server.base + path).status == 200
        run_id = get(server.base + "api/runs").json()["runs"][0]["run_id"]
        assert get(server.base + "run?id=" + run_id).status == 200
    assert log.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == files


def test_serve_refuses_a_missing_log_and_creates_nothing(tmp_path: Path) -> None:
    done = cli("serve", "--log", str(tmp_path / "none.jsonl"), "--port", "0", cwd=tmp_path)
    assert done.returncode == 2
    assert f"pipelines-events: error: {tmp_path / 'none.jsonl'}: no such log file" in done.stderr
    assert list(tmp_path.iterdir()) == []
    done = cli("serve", "--log", str(tmp_path / "none.jsonl"), "--port", "http", cwd=tmp_path)
    assert done.returncode == 2
    assert "--port: 'http' is not a port; give a number from 0 to 65535" in done.stderr


# -- the token -------------------------------------------------------------------------------


def test_listening_beyond_loopback_needs_public(served: tuple[Server, Path]) -> None:
    log = served[1]
    done = cli("serve", "--log", str(log), "--host", "0.0.0.0", "--port", "0", cwd=log.parent)
    assert done.returncode == 2
    assert "--host 0.0.0.0 is not a loopback address" in done.stderr
    assert "Pass --public to listen there anyway" in done.stderr


def test_public_server_requires_the_token_on_every_request(served: tuple[Server, Path]) -> None:
    log = served[1]
    with Server(log, "--host", "0.0.0.0", "--public") as server:
        assert "?token=" in server.url
        token = server.url.split("?token=", 1)[1]
        base = f"http://127.0.0.1:{server.port}/"
        for path in ("", "api/runs", "events", "static/app.js", "run?id=c-1", "nowhere"):
            got = get(base + path)
            assert got.status == 401, path
            assert "this server needs its token" in got.text
            got = get(base + path, headers={"Authorization": "Bearer wrong"})
            assert got.status == 401, path
        assert get(base + "?token=wrong").status == 401
        redirect = get(base + "run?id=c-1&token=" + token)
        assert redirect.status == 303 and redirect.headers["location"] == "/run?id=c-1"
        cookie = redirect.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        value = cookie.split(";", 1)[0]
        assert get(base + "api/runs", headers={"Cookie": value}).status == 200
        assert get(base + "api/runs", headers={"Authorization": f"Bearer {token}"}).status == 200
        got = get(base, headers={"Authorization": f"Bearer {token}", "Host": "runs.example"})
        assert got.status == 200  # a public server has no loopback Host to insist on


def test_token_file_sets_the_token_and_is_checked(
    tmp_path: Path, served: tuple[Server, Path]
) -> None:
    log = served[1]
    short = tmp_path / "short"
    short.write_text("abc\n")
    done = cli("serve", "--log", str(log), "--port", "0", "--token-file", str(short), cwd=tmp_path)
    assert done.returncode == 2
    assert (
        "give a token of at least 16 characters, each a letter, a digit or one of . _ ~ -"
    ) in done.stderr
    semicolon = tmp_path / "semicolon"
    semicolon.write_text("s3cret;token-of-some-length\n")
    done = cli(
        "serve", "--log", str(log), "--port", "0", "--token-file", str(semicolon), cwd=tmp_path
    )
    assert done.returncode == 2 and "(it travels in a cookie)" in done.stderr
    good = tmp_path / "token"
    good.write_text("s3cret-token-of-some-length\n")
    with Server(log, "--token-file", str(good)) as server:
        assert get(server.base + "api/runs").status == 401
        headers = {"Authorization": "Bearer s3cret-token-of-some-length"}
        assert get(server.base + "api/runs", headers=headers).status == 200


# -- the live stream -------------------------------------------------------------------------


def _sse(
    port: int, query: str, last_id: str | None, until_seq: int, timeout: float = 15
) -> list[tuple[int, dict[str, object]]]:
    """The change messages of ``/events?query`` up to seq ``until_seq``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    request = f"GET /events?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
    if last_id is not None:
        request += f"Last-Event-ID: {last_id}\r\n"
    sock.sendall((request + "\r\n").encode())
    buffer = b""
    got: list[tuple[int, dict[str, object]]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
            for block in buffer.split(b"\n\n")[:-1]:
                fields = dict(
                    line.split(": ", 1) for line in block.decode().splitlines() if ": " in line
                )
                if fields.get("event") == "change":
                    got.append((int(fields["id"]), json.loads(fields["data"])))
            buffer = buffer.rsplit(b"\n\n", 1)[-1] if b"\n\n" in buffer else buffer
            if got and got[-1][0] >= until_seq:
                return got
    finally:
        sock.close()
    raise AssertionError(f"the stream stopped at {got[-1][0] if got else None}")


def test_the_stream_resumes_exactly_after_last_event_id(tmp_path: Path) -> None:
    log = tmp_path / "runs.jsonl"
    assert (
        main(
            [
                "run",
                CALM,
                "--log",
                str(log),
                "--quiet",
                "--run-id",
                "first",
                "--input",
                '{"seconds": 0}',
            ]
        )
        == 0
    )
    first_head = EventLogPipelineResultsStorage(log, readonly=True)
    head = first_head.log.position.seq
    first_head.close()
    with Server(log) as server:
        start = _sse(server.port, "after=0", None, head)
        assert [seq for seq, _ in start] == list(range(1, head + 1))
        # Stop reading half-way, then other processes append runs.
        cut = head // 2
        for run_id in ("second", "third"):
            done = cli(
                "run",
                CALM,
                "--log",
                str(log),
                "--quiet",
                "--run-id",
                run_id,
                "--input",
                '{"seconds": 0}',
                cwd=tmp_path,
            )
            assert done.returncode == 0, done.stderr
        storage = EventLogPipelineResultsStorage(log, readonly=True)
        end = storage.log.position.seq
        storage.close()
        resumed = _sse(server.port, "after=0", str(cut), end)
        assert [seq for seq, _ in resumed] == list(range(cut + 1, end + 1))
        last = resumed[-1][1]
        assert last["run"] is not None and last["run"]["run_id"] == "third"  # type: ignore[index]
        assert last["run"]["status"] == "DONE"  # type: ignore[index]
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        of_second = [line["seq"] for line in lines if line["run_id"] == "second"]
        only = _sse(server.port, "run=second", "0", of_second[-1])
        assert [seq for seq, _ in only] == of_second
        assert {message["run_id"] for _, message in only} == {"second"}
        bad = get(server.base + "events", headers={"Last-Event-ID": "abc"})
        assert bad.status == 400 and "parameter 'Last-Event-ID'" in bad.text
        huge = get(server.base + "events", headers={"Last-Event-ID": "1" + "0" * 16})
        assert huge.status == 400
        assert "give a number from 0 to 1000000000000000, not 10000000000000000" in huge.text
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=15)
        sock.sendall(
            b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: 10000000000000\r\n\r\n"
        )
        beyond = b""
        while b"reload\n\n" not in beyond:
            chunk = sock.recv(65536)
            assert chunk, beyond
            beyond += chunk
        sock.close()
        assert b" 200 " in beyond.split(b"\r\n", 1)[0]
        assert b"event: reset\ndata: the log holds fewer events than the page has seen" in beyond


def test_cursor_after_finds_every_seq(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "runs.jsonl"
    assert main(["run", "tests.support.cli_pipelines.Hostile", "--log", str(log), "--quiet"]) == 1
    assert main(["run", CALM, "--log", str(log), "--quiet", "--input", '{"seconds": 0}']) == 0
    capsys.readouterr()
    data = log.read_bytes()
    starts = [0] + [i + 1 for i, byte in enumerate(data) if byte == 10]
    with JsonlEventLog(log, readonly=True) as reader:
        list(reader.read_new())
        head = reader.position
        assert head.offset == len(data)
        tail = LogTail(reader)
        for seq in range(head.seq + 1):
            cursor = tail.cursor_after(seq, head)
            assert (cursor.seq, cursor.offset) == (seq, starts[seq]), seq
        assert tail.cursor_after(head.seq + 5, head) == head
        start = tail.cursor_after(3, head)
        seqs = [event.seq for event, _ in tail.events(start, head, 10**6)]
        assert seqs == list(range(4, head.seq + 1))


def test_serve_without_the_web_extra_says_how_to_install_it(served: tuple[Server, Path]) -> None:
    log = served[1]
    code = (
        "import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None\n"
        "from pipelines_events.cli import main\n"
        f"sys.exit(main(['serve', '--log', {str(log)!r}, '--port', '0']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert done.stderr == (
        "pipelines-events: error: serve needs the web extra (starlette is missing): "
        "pip install 'pipelines-events[web]'\n"
    )


def test_a_removed_run_is_streamed_and_leaves_the_pages(tmp_path: Path) -> None:
    log = tmp_path / "runs.jsonl"
    assert (
        main(
            [
                "run",
                CALM,
                "--log",
                str(log),
                "--quiet",
                "--run-id",
                "gone",
                "--input",
                '{"seconds": 0}',
            ]
        )
        == 0
    )
    with Server(log) as server:
        head = get(server.base + "api/runs").json()["seq"]
        assert get(server.base + "run?id=gone").status == 200
        storage = EventLogPipelineResultsStorage(log)
        assert storage.cleanup() == ["gone"]
        storage.close()
        messages = _sse(server.port, f"after={head}", None, head + 1)
        assert [(seq, m["type"], m["run_id"]) for seq, m in messages] == [
            (head + 1, "removed", "gone")
        ]
        assert "run" not in messages[0][1] and "object" not in messages[0][1]
        assert get(server.base + "run?id=gone").status == 404
        assert get(server.base + "api/runs").json()["total"] == 0
        assert "no run matches" in get(server.base).text
