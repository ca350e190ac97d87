"""The dashboard opens in a browser: sign in once with the API token, then the page and
its live stream work on the session cookie. The app is served by a real WSGI server and
driven over HTTP the way a browser does (redirects, a form post, a cookie jar)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bot.app import create_app
from bot.config import parse_config
from bot.events import Router
from tests.conftest import LocalServer
from tests.fake_github import FakeGitHub

pytestmark = pytest.mark.e2e
TOKEN = "dashboard-api-token-0123456789"
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("CVF_API_TOKEN", TOKEN)
    config = parse_config(f"metrics:\n  store: {tmp_path}/m.db\n")
    app = create_app(config, github_factory=lambda *a, **k: FakeGitHub(), router=Router(),
                     env={"CVF_WEBHOOK_SECRET": "x", "CVF_API_TOKEN": TOKEN})
    server = LocalServer(app)
    try:
        yield server.url
    finally:
        server.close()


def test_a_browser_signs_in_and_sees_the_dashboard_and_its_stream(served: str) -> None:
    browser = requests.Session()
    browser.request = functools.partial(browser.request, timeout=10)  # type: ignore[method-assign]
    first = browser.get(f"{served}/dashboard?period=7d", headers=HTML, allow_redirects=False)
    assert first.status_code == 303
    assert first.headers["Location"] == "/login?next=/dashboard%3Fperiod%3D7d"
    form = browser.get(f"{served}{first.headers['Location']}", headers=HTML)
    assert form.status_code == 200 and 'name="token"' in form.text
    assert 'value="/dashboard?period=7d"' in form.text

    wrong = browser.post(f"{served}/login", data={"token": "guess", "next": "/dashboard"},
                         allow_redirects=False)
    assert wrong.status_code == 401 and "not the API token" in wrong.text
    assert "cvf_session" not in browser.cookies

    signed = browser.post(f"{served}/login", data={"token": TOKEN,
                                                   "next": "/dashboard?period=7d"},
                          allow_redirects=False)
    assert signed.status_code == 303 and signed.headers["Location"] == "/dashboard?period=7d"
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert TOKEN not in cookie

    page = browser.get(f"{served}/dashboard?period=7d", headers=HTML)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert 'EventSource("api/metrics/stream")' in page.text
    with browser.get(f"{served}/api/metrics/stream", stream=True, timeout=10) as stream:
        assert stream.status_code == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        assert next(stream.iter_lines()).startswith(b"retry:")
    assert browser.get(f"{served}/api/metrics").status_code == 200

    # The cookie opens reads only: posting records still needs the bearer token.
    posted = browser.post(f"{served}/api/executions", json={"id": "x"})
    assert posted.status_code == 401

    # A forged or altered cookie is refused; signing out ends the session.
    real = browser.cookies["cvf_session"]
    altered = real[:-1] + ("1" if real.endswith("0") else "0")
    forged = requests.get(f"{served}/api/metrics", timeout=10,
                          cookies={"cvf_session": altered})
    assert forged.status_code == 401
    browser.post(f"{served}/logout")
    assert browser.get(f"{served}/api/metrics").status_code == 401


def test_an_offsite_next_is_not_followed(served: str) -> None:
    signed = requests.post(f"{served}/login", data={"token": TOKEN,
                                                    "next": "//evil.example/x"},
                           allow_redirects=False, timeout=10)
    assert signed.headers["Location"] == "/dashboard"


def test_without_a_token_the_browser_is_told_what_to_set(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CVF_API_TOKEN", raising=False)
    config = parse_config(f"metrics:\n  store: {tmp_path}/m.db\n")
    app = create_app(config, github_factory=lambda *a, **k: FakeGitHub(), router=Router(),
                     env={"CVF_WEBHOOK_SECRET": "x"})
    page = app.test_client().get("/dashboard", headers=HTML)
    assert page.status_code == 503 and "CVF_API_TOKEN" in page.get_data(as_text=True)
    assert page.mimetype == "text/html"
