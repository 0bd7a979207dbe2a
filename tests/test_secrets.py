"""A ``base_url`` with credentials never reaches the database, an export or a log.

``https://user:pass@host/v1?api-key=…`` is a working way to reach a protected server (the SDK turns
the user info into Basic auth), so the backend keeps using it as written; everything that is
stored, exported or logged sees :func:`backends.api_errors.public_url`'s form instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.api_errors import RedactingFilter, public_url, redact, scrub_urls
from backends.profiles import ModelProfile
from kurabe.export.exporter import FORMATS, export_session
from kurabe.session.comparison import ComparisonSession
from kurabe.store.store import Store
from personas import Persona
from tests.api_backend_support import serve
from tests.wire_servers import WireServer, openai_error, openai_stream

PASSWORD = "hunter2-PASSWORD-in-url"
QUERY_SECRET = "QUERY-SECRET-0123456789"
PERSONA = Persona(id="p", title="p", system="あなたは大のアニメファンです。")


@pytest.fixture
def server() -> Iterator[WireServer]:
    yield from serve("openai")


def credentialed(server: WireServer) -> str:
    return f"http://kurabe:{PASSWORD}@127.0.0.1:{server.port}/v1?api-key={QUERY_SECRET}&v=2"


def public(server: WireServer) -> str:
    return f"http://127.0.0.1:{server.port}/v1?api-key=***&v=2"


def test_public_url_and_scrub_urls() -> None:
    url = f"https://user:{PASSWORD}@example.com:8443/v1?api-key={QUERY_SECRET}&api-version=2024#f"
    assert public_url(url) == "https://example.com:8443/v1?api-key=***&api-version=2024"
    assert public_url("https://h/v1?q=sk-proj-abcdefghijkl") == "https://h/v1?q=***"
    text = f"cannot reach {url} (and https://h/x?X-Amz-Signature=abc&ok=1)"
    assert scrub_urls(text) == (
        "cannot reach https://example.com:8443/v1?api-key=***&api-version=2024#f"
        " (and https://h/x?X-Amz-Signature=***&ok=1)"
    )
    assert PASSWORD not in redact(text) and QUERY_SECRET not in redact(text)
    assert scrub_urls("ユーザー: こんにちは") == "ユーザー: こんにちは"


async def run_session(store: Store, server: WireServer) -> ComparisonSession:
    """One turn answered, one turn refused with a 404 whose message echoes the URL."""
    echo = openai_error(404, f"no route for {credentialed(server)}", type="not_found")
    server.script(openai_stream(["うん、", "好き！"]), echo)
    profile = ModelProfile(
        name="vllm",
        backend="openai",
        model="m",
        base_url=credentialed(server),
        max_retries=0,
        timeout_s=5.0,
    )
    session = ComparisonSession.create(store, PERSONA, [profile], rater="はな")
    try:
        await session.send("アニメ好き？")
        await session.send("何が好き？")
    finally:
        await session.aclose()
    return session


async def test_the_database_holds_no_url_credential(tmp_path: Path, server: WireServer) -> None:
    store = Store(tmp_path / "kurabe.sqlite3")
    session = await run_session(store, server)
    # The request really carried them: the backend uses the URL as written.
    assert QUERY_SECRET in server.requests[0].path
    dump = store.database.dump_text()
    assert PASSWORD not in dump and QUERY_SECRET not in dump
    [pane] = store.load_record(session.id).panes
    assert pane.settings["profile"]["base_url"] == public(server)
    assert pane.settings["backend"]["base_url"] == public(server)
    replies = store.load_record(session.id).replies
    assert [r.status for r in replies] == ["complete", "failed"]
    assert replies[1].error is not None
    assert f"no route for http://127.0.0.1:{server.port}/v1?api-key=***" in replies[1].error


async def test_no_export_carries_a_url_credential(tmp_path: Path, server: WireServer) -> None:
    store = Store(tmp_path / "kurabe.sqlite3")
    session = await run_session(store, server)
    for fmt in FORMATS:
        text = export_session(store, session.id, fmt)
        assert PASSWORD not in text and QUERY_SECRET not in text, fmt
    md = export_session(store, session.id, "md")
    assert f"Base URL: {public(server)}" in md.splitlines()


def test_rows_stored_before_the_scrub_are_exported_without_credentials(tmp_path: Path) -> None:
    store = Store(tmp_path / "kurabe.sqlite3")
    session_id = store.sessions.create(PERSONA, None, blind=False, rater="はな")
    pane_id = store.sessions.add_pane(
        session_id, 0, "A", profile_name="vllm", backend="openai", model="m", settings={}
    )
    url = f"https://kurabe:{PASSWORD}@example.com/v1?token={QUERY_SECRET}"
    raw = json.dumps({"profile": {"base_url": url}, "backend": {"base_url": url}})
    store.database.execute("UPDATE panes SET settings_json = ? WHERE id = ?", (raw, pane_id))
    assert PASSWORD in store.database.dump_text()  # as an older kurabe stored it
    for fmt in FORMATS:
        text = export_session(store, session_id, fmt)
        assert PASSWORD not in text and QUERY_SECRET not in text, fmt
    assert "Base URL: https://example.com/v1?token=***" in export_session(store, session_id, "md")


async def test_the_log_file_holds_no_url_credential(
    tmp_path: Path, server: WireServer, kurabe_home: Path
) -> None:
    from tui.app import log_to_file

    root = logging.getLogger()
    level = root.level
    handler = log_to_file()
    root.setLevel(logging.DEBUG)  # the SDKs log each request's URL at debug and info level
    try:
        await run_session(Store(tmp_path / "kurabe.sqlite3"), server)
        logging.getLogger("kurabe.test").warning("base_url is %s", credentialed(server))
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()
    log = (kurabe_home / "data" / "kurabe.log").read_text(encoding="utf-8")
    assert f"127.0.0.1:{server.port}" in log  # the URLs were logged …
    assert PASSWORD not in log and QUERY_SECRET not in log  # … without their credentials


def test_the_filter_redacts_tracebacks_too() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, None)
    try:
        raise RuntimeError(f"cannot reach https://u:{PASSWORD}@h/v1")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    assert record.exc_text is not None and "https://h/v1" in record.exc_text
    assert PASSWORD not in record.exc_text


def test_kurabe_models_and_the_pane_header_show_no_url_credential() -> None:
    from backends.readiness import describe_profile
    from tui.pane_strip import backend_label

    url = f"https://kurabe:{PASSWORD}@vllm.example:8000/v1?api-key={QUERY_SECRET}"
    profile = ModelProfile(name="vllm", backend="openai", model="m", base_url=url)
    state, detail = describe_profile(profile, offload_supported=False)
    assert state == "usable" and "vllm.example:8000" in detail
    assert PASSWORD not in detail and QUERY_SECRET not in detail
    assert backend_label(profile) == "vllm.example:8000"
