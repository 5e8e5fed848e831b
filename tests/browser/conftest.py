"""Real-browser fixtures: Debian's Chromium (/usr/bin/chromium) driven by Playwright's sync API.

- `browser`: one headless Chromium per test session, launched with LAUNCH_ARGS and Playwright's
  own fresh, temporary profile (user-data dir); closed at the end, and then no process it started
  may still be running (see `_leftover_browser_processes`).
- `page`: a fresh browser context (no cookies, no storage) per test, 1280x800; a failing test
  leaves a `failure-<test>.png` screenshot.
- `page_events`: what the page reported — console errors, uncaught exceptions, Content-Security-
  Policy violations, failed requests, every response — for tests to assert on.
- `client_app`: a tiny real HTTP server on a loopback port, the OAuth client's redirect URI.
- `screenshot(page, name)`: a full-page PNG under test-artifacts/screenshots/ (git-ignored).

Without Chromium or the playwright package the tests skip, and fail under CI=true:
`require_browser` is the one place that decides. Downloads are impossible here, so Playwright's
own browser builds (`playwright install`) are never used. See DEVELOPERS.md.
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from ..e2e.processes import HOST

CHROMIUM = Path("/usr/bin/chromium")
# Why each flag: DEVELOPERS.md, "Launch flags".
LAUNCH_ARGS = [
    "--no-sandbox",  # tests and CI run as root, where Chromium's sandbox cannot start
    "--disable-gpu",  # no GPU here: software rendering only, no GPU process probing
    "--disable-background-networking",  # the network reaches only package registries: no background fetches
    "--disable-component-update",  # no component downloads (CRLSets, Widevine, …)
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}
ACTION_TIMEOUT_MS = 20_000  # any one click, fill or navigation
LAUNCH_TIMEOUT_MS = 60_000
# Set in the browser's environment only, so that every process it starts (renderers, zygotes and
# the crash handler, which is re-parented to init) can be found again, and nothing else.
RUN_MARKER = "TESTS_BROWSER_RUN_ID"
EXIT_TIMEOUT = 10  # seconds for the browser's processes to be gone after close


# -- whether the browser tests can run: decided here only ------------------------------

def missing_browser() -> str | None:
    """Why the browser tests cannot run on this machine, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"the playwright package is not installed ({exc}); run `python3 dev.py test` or pip install -e '.[test]'"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing: apt-get install -y chromium (see DEVELOPERS.md)"
    return None


def require_browser() -> None:
    """Skip without a browser; under CI=true fail instead, so that CI never passes without them."""
    reason = missing_browser()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"the browser tests must run under CI=true, but {reason}", pytrace=False)
    pytest.skip(reason)


# -- the browser ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    require_browser()
    from playwright.sync_api import sync_playwright

    # A home of its own: Debian's Chromium keeps its crash database and caches under $HOME.
    home = tmp_path_factory.mktemp("chromium-home")
    run_id = secrets.token_hex(8)
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        RUN_MARKER: run_id,
    }
    # Screenshots are of the last run only: none left over from an earlier one (a stale
    # failure-*.png would mislead).
    for stale in SCREENSHOTS.glob("*.png"):
        stale.unlink()
    profile = None
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS, env=env, timeout=LAUNCH_TIMEOUT_MS,
        )
        profile = _profile_arg(run_id)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()
        leftovers = _leftover_browser_processes(run_id, profile)
        if leftovers:
            for pid in leftovers:  # ours for certain: they carry this run's marker
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            pytest.fail(f"browser processes still ran {EXIT_TIMEOUT}s after close, killed: {leftovers}", pytrace=False)


def _marked_processes(run_id: str, profile: bytes | None = None) -> dict[int, list[bytes]]:
    """Live processes (not zombies) of this run's browser, with their command lines: those with
    the marker in their environment (the browser, its crash handlers), and those whose command
    line names its profile directory (renderers, zygotes: their environment is not readable)."""
    needle = f"{RUN_MARKER}={run_id}".encode()
    found = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            raw = (entry / "cmdline").read_bytes()
            try:
                marked = needle in (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                marked = False
            # Zygote-forked processes rewrite their command line as one string: match within it.
            if (marked or (profile is not None and profile in raw)) and not _is_zombie(entry):
                found[int(entry.name)] = raw.split(b"\0")
        except OSError:
            continue  # gone meanwhile
    return found


def _profile_arg(run_id: str) -> bytes | None:
    """The browser's `--user-data-dir=…` argument (Playwright's temporary profile)."""
    for cmdline in _marked_processes(run_id).values():
        for arg in cmdline:
            if arg.startswith(b"--user-data-dir="):
                return arg
    return None


def _leftover_browser_processes(run_id: str, profile: bytes | None) -> list[int]:
    """PIDs of this run's browser processes still alive once given EXIT_TIMEOUT to exit."""
    deadline = time.monotonic() + EXIT_TIMEOUT
    while True:
        found = sorted(_marked_processes(run_id, profile))
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _is_zombie(proc: Path) -> bool:
    stat = (proc / "stat").read_text()
    return stat[stat.rindex(")") + 2] == "Z"  # the state follows "(comm) "


_CALL_REPORT = pytest.StashKey()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    return report


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(ACTION_TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def page(context, request):
    page = context.new_page()
    yield page
    report = request.node.stash.get(_CALL_REPORT, None)
    if report is not None and report.failed and not page.is_closed():
        try:
            screenshot(page, f"failure-{request.node.name}")
        except Exception as exc:  # the failure itself matters more than its picture
            print(f"no failure screenshot: {exc}")


def screenshot(page, name: str) -> Path:
    """Save a full-page PNG as test-artifacts/screenshots/<name>.png; returns its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (name if name.endswith(".png") else f"{name}.png")
    page.screenshot(path=str(path), full_page=True)
    return path


# -- what the page reports ----------------------------------------------------------------

# Runs in every document before its own scripts (as an init script, so the page's CSP does not
# apply to it): hands each CSP violation to the test through an exposed function.
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__reportCspViolation(
    `${event.effectiveDirective} blocked ${event.blockedURI || "(inline)"} on ${event.documentURI}` +
    ` at ${event.sourceFile || "?"}:${event.lineNumber}`);
});
"""


@dataclass
class Response:
    status: int
    url: str
    content_type: str


@dataclass
class PageEvents:
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)  # uncaught exceptions
    csp_violations: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # not the page's fault: the favicon's 404, aborted loads

    def problems(self) -> list[str]:
        return [
            *(f"console error: {text}" for text in self.console_errors),
            *(f"uncaught exception: {text}" for text in self.page_errors),
            *(f"CSP violation: {text}" for text in self.csp_violations),
            *(f"request failed: {text}" for text in self.failed_requests),
        ]


@pytest.fixture
def page_events(page) -> PageEvents:
    events = PageEvents()

    def on_console(message):
        if message.type != "error":
            return
        url = message.location.get("url", "")
        if urlsplit(url).path == "/favicon.ico":
            # The browser asks for /favicon.ico on its own (and only sometimes, as it caches the
            # answer); the pages name no icon, so the server's 404 is logged. Not a page error.
            events.ignored.append(message.text)
            return
        events.console_errors.append(f"{message.text} ({url or '?'})")

    def on_request_failed(request):
        failure = f"{request.method} {request.url}: {request.failure}"
        if request.failure == "net::ERR_ABORTED":
            # A load the page's own navigation cancelled (a form posted before the favicon or the
            # script arrived, which a loaded machine makes likely): nothing failed on the server.
            events.ignored.append(failure)
            return
        events.failed_requests.append(failure)

    def on_response(response):
        events.responses.append(Response(response.status, response.url, response.headers.get("content-type", "")))

    def on_csp_violation(text):
        events.csp_violations.append(text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: events.page_errors.append(str(error)))
    page.on("requestfailed", on_request_failed)
    page.on("response", on_response)
    page.expose_function("__reportCspViolation", on_csp_violation)
    page.add_init_script(_CSP_LISTENER)
    return events


def assert_product_stylesheet(page, events: PageEvents) -> None:
    """The page applies the product's stylesheet: a sheet from /static/ answered 200 as text/css
    (or 304 to a revalidation) and was parsed into rules (one refused by CSP or nosniff has none)."""
    sheets = page.evaluate("""() => Array.from(document.styleSheets, (sheet) => {
        let rules = null;
        try { rules = sheet.cssRules.length; } catch (error) {}
        return {href: sheet.href, rules};
    })""")
    ours = [sheet for sheet in sheets if sheet["href"] and urlsplit(sheet["href"]).path.startswith("/static/")]
    assert ours, f"no stylesheet from /static/ on {page.url}: {sheets}"
    for sheet in ours:
        assert sheet["rules"], f"the stylesheet {sheet['href']} has no rules on {page.url}"
        answers = [response for response in events.responses if response.url == sheet["href"]]
        assert answers, f"no response recorded for {sheet['href']}"
        # Fetched once as CSS; a later page may revalidate it from the browser's cache (304).
        assert any(a.status == 200 and a.content_type.startswith("text/css") for a in answers), answers
        assert all(a.status in (200, 304) for a in answers), answers


# -- the OAuth client's redirect URI --------------------------------------------------------

@dataclass(frozen=True)
class Callback:
    path: str
    query: dict


class ClientApp:
    """What a real client app has at its redirect URI: an HTTP server on a loopback port that
    records the query of every request to `callback_path` and answers a small HTML page."""

    callback_path = "/callback"

    def __init__(self):
        self.callbacks: list[Callback] = []
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                parts = urlsplit(self.path)
                if parts.path != app.callback_path:
                    self.send_error(404)
                    return
                query = {name: values[0] for name, values in parse_qs(parts.query).items()}
                app.callbacks.append(Callback(parts.path, query))
                outcome = "Signed in" if "code" in query else f"Not signed in: {query.get('error', 'no code')}"
                body = (
                    "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Client app</title>"
                    "<link rel='icon' href='data:,'></head><body>"
                    f"<h1>{outcome}</h1><p>The client app received: {', '.join(sorted(query)) or 'nothing'}.</p>"
                    "</body></html>"
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format, *args):
                pass  # quiet

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self.redirect_uri = f"http://{HOST}:{self._server.server_address[1]}{self.callback_path}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def client_app():
    app = ClientApp()
    app.start()
    try:
        yield app
    finally:
        app.stop()
