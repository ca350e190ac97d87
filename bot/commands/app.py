"""``cvf app create``: register the GitHub App through GitHub's manifest flow.

A small page on 127.0.0.1 posts the App manifest (permissions and events from
``.github/app-manifest.json``, the name and webhook URL from the command line) to GitHub;
GitHub creates the App and redirects back with a one-time code, which
``bot.github.manifest`` exchanges for the App's id, key and secrets. The random ``state``
makes sure the code comes from the flow this command started.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import click

from bot.errors import CvfError, InputError

PACKAGED = Path(__file__).resolve().parent.parent / "app-manifest.json"
CHECKOUT = Path(__file__).resolve().parent.parent.parent / ".github" / "app-manifest.json"
SECRET_FILES = ("private-key.pem", "webhook-secret", "client-secret")


def manifest_template() -> dict[str, Any]:
    """The shipped manifest (a wheel carries it as ``bot/app-manifest.json``)."""
    path = PACKAGED if PACKAGED.is_file() else CHECKOUT
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def build_manifest(*, name: str, webhook_url: str, redirect_url: str,
                   homepage: str) -> dict[str, Any]:
    manifest = manifest_template()
    manifest.update(name=name, url=homepage, redirect_url=redirect_url)
    manifest["hook_attributes"] = {**manifest.get("hook_attributes", {}), "url": webhook_url}
    return manifest


def _check_url(value: str, option: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f'{option} "{value}" is not an http(s) URL',
                         hint=f"e.g. {option} https://cvf.example.org/webhook")
    return value.rstrip("/")


class Flow:
    """One run of the manifest flow: the page, the callback, and what it wrote."""

    def __init__(self, *, name: str, webhook_url: str, github_url: str, api_url: str,
                 org: str | None, out: Path) -> None:
        self.name, self.webhook_url, self.org, self.out = name, webhook_url, org, out
        self.github_url, self.api_url = github_url, api_url
        self.state = secrets.token_urlsafe(24)
        self.redirect_url = ""
        self.result: dict[str, Any] | None = None
        self.error: str | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None

    def action(self) -> str:
        where = f"/organizations/{quote(self.org)}" if self.org else ""
        return f"{self.github_url}{where}/settings/apps/new?state={quote(self.state)}"

    def form_page(self) -> str:
        from bot.templating import render

        parts = urlsplit(self.webhook_url)
        manifest = build_manifest(name=self.name, webhook_url=self.webhook_url,
                                  redirect_url=self.redirect_url,
                                  homepage=f"{parts.scheme}://{parts.netloc}")
        return render("app/manifest.html.j2", page="form", title="Create the GitHub App",
                      app={"name": self.name}, action=self.action(),
                      manifest=json.dumps(manifest, indent=2))

    def callback(self, query: dict[str, list[str]]) -> tuple[int, str]:
        from bot.github.manifest import convert_manifest_code
        from bot.github.port import GitHubError
        from bot.templating import render

        state = (query.get("state") or [""])[0]
        code = (query.get("code") or [""])[0]
        if not secrets.compare_digest(state.encode(), self.state.encode()):
            self.error = ("the redirect's state does not match this run's (a stale or "
                          "forged link); nothing was written")
        elif not code:
            self.error = "GitHub's redirect carried no code; nothing was written"
        else:
            try:
                app = convert_manifest_code(code, api_url=self.api_url)
            except GitHubError as exc:
                self.error = f"{exc}; nothing was written"
            else:
                try:
                    self.result = self.write(app)
                except OSError as exc:
                    self.error = (f"cannot write the App's credentials to {self.out}: {exc}; "
                                  f"delete the App at {app['html_url']} and start again")
                else:
                    return 200, render("app/manifest.html.j2", page="done",
                                       title="GitHub App created", app=self.result)
        return 400, render("app/manifest.html.j2", page="error", app={"name": self.name},
                           title="GitHub App not created", message=self.error)

    def write(self, app: dict[str, Any]) -> dict[str, Any]:
        """Secrets go to files readable by their owner only (0600, directory 0700)."""
        self.out.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name, value in zip(SECRET_FILES, (app["pem"], app["webhook_secret"],
                                               app["client_secret"]), strict=True):
            fd = os.open(self.out / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(value)
        html_url = str(app["html_url"])
        facts = {"app_id": app["id"], "slug": app["slug"], "name": app.get("name", self.name),
                 "html_url": html_url, "client_id": app["client_id"],
                 "owner": (app.get("owner") or {}).get("login"),
                 "install_url": f"{html_url}/installations/new"}
        (self.out / "app.json").write_text(json.dumps(facts, indent=2) + "\n", "utf-8")
        return {**facts, "out": str(self.out)}


def serve(flow: Flow, *, port: int, timeout: float, echo: Any = click.echo) -> None:
    """Answer the page and the callback on 127.0.0.1 until the callback has come."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            parts = urlsplit(self.path)
            if parts.path == "/":
                self._send(200, flow.form_page())
            elif parts.path == "/callback":
                self._send(*flow.callback(parse_qs(parts.query)))
            else:
                self._send(404, "Not found")

        def _send(self, status: int, body: str) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the query carries the one-time code: keep it off the terminal

    server = HTTPServer(("127.0.0.1", port), Handler)
    server.timeout = 0.5
    host, bound = server.server_address[:2]
    flow.redirect_url = f"http://{host!s}:{bound}/callback"
    echo(f"Open http://{host!s}:{bound}/ in your browser to create the App on GitHub "
         f"(waiting up to {timeout:.0f}s; Ctrl-C stops).")
    deadline = time.monotonic() + timeout
    try:
        while not flow.done:
            if time.monotonic() > deadline:
                flow.error = f"no answer from GitHub within {timeout:.0f}s; nothing was written"
                break
            server.handle_request()
    finally:
        server.server_close()


@click.group("app")
def app_group() -> None:
    """GitHub App set-up: create the App from the manifest."""


@app_group.command("create")
@click.option("--webhook-url", required=True, metavar="URL",
              help="Where GitHub sends events: https://<your host>/webhook.")
@click.option("--name", required=True, help="The App's name (unique on GitHub).")
@click.option("--org", default=None, metavar="ORG",
              help="Create the App in this organization (default: your account).")
@click.option("--github-url", default="https://github.com", show_default=True,
              help="GitHub's web address (GitHub Enterprise Server: https://HOST).")
@click.option("--api-url", envvar="GITHUB_API_URL", default=None,
              help="API base URL (default: api.github.com, or HOST/api/v3 for Enterprise).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path(".cvf/app"), show_default=True,
              help="Directory for the App's id, key and secrets.")
@click.option("--port", type=int, default=0, show_default=True,
              help="Local port for the set-up page (0: any free port).")
@click.option("--timeout", type=float, default=3600.0, show_default=True,
              help="Seconds to wait for GitHub (its codes expire after an hour).")
def create_command(webhook_url: str, name: str, org: str | None, github_url: str,
                   api_url: str | None, out: Path, port: int, timeout: float) -> None:
    """Create the GitHub App through GitHub's manifest flow and save its credentials."""
    webhook_url = _check_url(webhook_url, "--webhook-url")
    github_url = _check_url(github_url, "--github-url")
    if api_url is None:
        api_url = ("https://api.github.com" if urlsplit(github_url).netloc == "github.com"
                   else f"{github_url}/api/v3")
    api_url = _check_url(api_url, "--api-url")
    out = out.resolve()
    taken = [name_ for name_ in (*SECRET_FILES, "app.json") if (out / name_).exists()]
    if taken:
        raise InputError(f"{out} already holds {', '.join(taken)} (another App's credentials)",
                         hint="move them away or pass another --out")
    flow = Flow(name=name, webhook_url=webhook_url, github_url=github_url, api_url=api_url,
                org=org, out=out)
    serve(flow, port=port, timeout=timeout)
    if flow.result is None:
        raise CvfError(flow.error or "the App was not created")
    facts = flow.result
    click.echo(f"Created the GitHub App {facts['name']} (id {facts['app_id']}); its "
               f"credentials are in {out} (key and secrets readable by you only).")
    click.echo(f"Install it on your repositories: {facts['install_url']}")
    click.echo("Then run the webhook app with:")
    click.echo(f"export CVF_APP_ID={facts['app_id']}")
    click.echo(f"export CVF_PRIVATE_KEY={shlex.quote(str(out / 'private-key.pem'))}")
    click.echo('export CVF_WEBHOOK_SECRET="$(cat '
               f'{shlex.quote(str(out / "webhook-secret"))})"')


def register(cli: click.Group) -> None:
    cli.add_command(app_group)
