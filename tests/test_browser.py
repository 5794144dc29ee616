"""The chat in a real browser: headless Debian Chromium driven by Playwright against `rag serve` in a subprocess.

Two servers: one over the bundled corpus (the screenshots come from it) and one over a small corpus holding a
document full of script. Screenshots go to tests/artifacts/ (the README's docs/screenshot.png is one of them).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rag import indexing
from rag.config import Settings
from rag.embedding import Encoder
from rag.pipeline import Assistant

from .helpers import ROOT, SMALL_DOCS, write_corpus

pytest.importorskip("playwright")
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "tests" / "artifacts"
STARTUP = 90.0  # seconds the server may take to load the model and open its port
TIMEOUT_MS = 15_000  # the longest any one browser wait may take

QUESTION = "When did Japan establish diplomatic relations with Ukraine?"
ACCORD = "What is the Accord on Support for Ukraine and Cooperation?"
# The README's screenshot conversation: a follow-up that points back ("then") and that the documents answer.
FIRST = "When did Japan establish diplomatic relations with Ukraine?"
FOLLOW_UP = "How many documents have been signed since then?"
OFF_TOPIC = "How do I bake sourdough bread at home?"

XSS_TEXT = (
    "Clove Trade Notes\n\n"
    "The Zanzibar clove harvest begins in July and lasts until October. <script>window.__xss=1</script> "
    'Growers dry the clove buds on woven mats for four days. <img src=x onerror="window.__xss=1"> '
    'Traders warn buyers about <a href="javascript:window.__xss=1">forged price lists</a> of cloves.\n'
)
XSS_QUESTION = "When does the Zanzibar clove harvest begin?"
ADMIN_TOKEN = "browser-s3cret"
THREE = [FIRST, FOLLOW_UP, ACCORD]  # the screenshots' conversation: an answer, a follow-up, another answer
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
PHONE_HEIGHT = 4_000  # px: three answers on a phone were 10,404 px with five full cards each (issue #21)

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is not installed (make browser)", allow_module_level=True)


@dataclass
class Server:
    url: str
    corpus: Path
    process: subprocess.Popen[bytes]

    def corpus_texts(self) -> list[str]:
        return [" ".join(p.read_text(encoding="utf-8-sig").split()) for p in sorted(self.corpus.rglob("*.txt"))]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    root: Path, settings: Settings, launcher: list[str] | None = None, environ: dict[str, str] | None = None
) -> Iterator[Server]:
    """`rag serve` over a corpus whose index is already built; stopped (terminate, then kill) at teardown.

    `launcher` replaces the `rag` command (it gets the same arguments), e.g. `python -c <code that patches>`;
    `environ` adds variables (`RAG_*` ones among them) to its environment.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env |= environ or {}
    command = launcher or [str(Path(sys.executable).parent / "rag")]
    log_path = root / "server.log"
    args = ["--corpus", str(settings.corpus), "--index", str(settings.index), "serve", "--port", str(port)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*command, *args],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP
        while True:
            if process.poll() is not None:
                pytest.fail(f"rag serve exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"rag serve did not answer in {STARTUP:.0f} s:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.2)
        yield Server(url, settings.corpus, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, assistant: Assistant) -> Iterator[Server]:
    """The bundled corpus (conftest's index, copied), served by `rag serve` with admin routes off."""
    root = tmp_path_factory.mktemp("live")
    shutil.copytree(assistant.settings.corpus, root / "corpus")
    shutil.copytree(assistant.settings.index, root / "index")
    yield from start_server(root, Settings(corpus=root / "corpus", index=root / "index"))


# `rag serve`, with an exact span (the first year in the answer sentence, or a date ending in it) added to any
# answer that has none of its own: the chat's bold exact answer can be checked whatever the answer picker does.
# The assistant's answers are changed, not their JSON: the pages read the `Response` itself.
WITH_EXACT = """
import dataclasses, re, sys
from rag import cli
from rag.answer import Exact
from rag.pipeline import Assistant

ask = Assistant.ask

def with_exact(self, *args, **kwargs):
    response = ask(self, *args, **kwargs)
    a = response.answer
    if a and not a.exact:
        m = re.search(r"(?:[A-Z][a-z]+ [0-9]{1,2}, )?[0-9]{4}", a.text)
        if m:
            exact = Exact(m.group(), a.start + m.start(), a.start + m.end())
            response = dataclasses.replace(response, answer=dataclasses.replace(a, exact=exact))
    return response

Assistant.ask = with_exact
sys.argv[0] = "rag"
cli.main()
"""


def bundled_copy(factory: pytest.TempPathFactory, assistant: Assistant, name: str) -> tuple[Path, Settings]:
    """A fresh folder holding copies of the session's corpus and index, and settings over them."""
    root = factory.mktemp(name)
    shutil.copytree(assistant.settings.corpus, root / "corpus")
    shutil.copytree(assistant.settings.index, root / "index")
    return root, Settings(corpus=root / "corpus", index=root / "index")


@pytest.fixture(scope="module")
def exact_server(tmp_path_factory: pytest.TempPathFactory, assistant: Assistant) -> Iterator[Server]:
    """The bundled corpus served with every answer carrying an exact span (its own, or one added: WITH_EXACT)."""
    root, settings = bundled_copy(tmp_path_factory, assistant, "live-exact")
    yield from start_server(root, settings, [sys.executable, "-c", WITH_EXACT])


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory, assistant: Assistant) -> Iterator[Server]:
    """The bundled corpus served with admin routes on (token ADMIN_TOKEN)."""
    root, settings = bundled_copy(tmp_path_factory, assistant, "live-admin")
    yield from start_server(root, settings, environ={"RAG_ADMIN_TOKEN": ADMIN_TOKEN})


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Iterator[Server]:
    """Three small documents and one holding script, an event handler and a javascript: link."""
    root = tmp_path_factory.mktemp("live-hostile")
    settings = Settings(
        corpus=write_corpus(root / "corpus", {**SMALL_DOCS, "cloves.txt": XSS_TEXT}), index=root / "index"
    )
    indexing.build(settings, encoder, progress=False)
    yield from start_server(root, settings)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh desktop-sized page (1280x900) with bounded waits."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def ask(page: Page, question: str) -> Any:
    """Type a question, press Enter, wait for its reply; returns the new turn's locator."""
    before = page.locator("article.turn").count()
    page.locator("#q").fill(question)
    page.locator("#q").press("Enter")
    turn = page.locator("article.turn").nth(before)
    expect(turn.locator(".reply")).to_be_visible()
    return turn


def settle_scroll(page: Page) -> None:
    """Wait (at most 3 s) for the chat's smooth scroll to the newest reply to come to rest."""
    deadline, last = time.monotonic() + 3, None
    while time.monotonic() < deadline:
        y = page.evaluate("window.scrollY")
        if y == last:
            return
        last = y
        page.wait_for_timeout(100)


def console_errors(page: Page) -> list[str]:
    """Script errors, console errors (CSP violations among them) and failed requests, as they happen.

    The browser's own request for /favicon.ico (the pages name no icon) is left out.
    """
    errors: list[str] = []

    def on_console(message: Any) -> None:
        url = (message.location or {}).get("url", "")
        if message.type == "error" and not url.endswith("/favicon.ico"):
            errors.append(f"console: {message.text} ({url})")

    def on_response(response: Any) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            errors.append(f"{response.status}: {response.url}")

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
    page.on("pageerror", lambda e: errors.append(f"script: {e}"))
    return errors


# ---------------------------------------------------------------------------------------------------------------


def test_enter_asks_and_shows_a_quoted_answer_with_citations(page: Page, server: Server) -> None:
    errors = console_errors(page)
    page.goto(server.url + "/")
    expect(page.locator("#q")).to_be_focused()
    held: list[Any] = []
    page.route("**/turn", lambda route: held.append(route))  # hold the request to see the page while it waits
    page.locator("#q").fill(QUESTION)
    page.locator("#q").press("Enter")
    expect(page.locator("#status")).to_have_text(re.compile(r"\S"))
    expect(page.locator("form#ask")).to_have_attribute("aria-busy", "true")
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert len(held) == 1
    page.wait_for_timeout(500)  # the delay: the status stays up while the request is held
    expect(page.locator("#status")).to_contain_text("Searching")
    held[0].continue_()

    answer = page.locator("article.turn .reply blockquote.answer")
    expect(answer).to_be_visible()
    text = " ".join(answer.locator("p").inner_text().split())
    assert "1992" in text
    assert any(text in doc for doc in server.corpus_texts())  # a sentence quoted from the corpus
    expect(page.locator("article.turn .citation").first).to_be_visible()
    assert page.locator("article.turn .citation").count() >= 1
    expect(page.locator("#status")).to_have_text("")
    expect(page.locator("#q")).to_have_value("")
    expect(page.locator("#q")).to_be_focused()
    expect(page.locator("#intro")).to_have_count(0)
    assert errors == []  # no script error and no Content-Security-Policy violation


def test_shift_enter_adds_a_line_instead_of_sending(page: Page, server: Server) -> None:
    page.goto(server.url + "/")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/turn") else None)
    box = page.locator("#q")
    box.click()
    box.type("Line one")
    box.press("Shift+Enter")
    box.type("line two")
    expect(box).to_have_value("Line one\nline two")
    page.wait_for_timeout(300)
    assert sent == [] and page.locator("article.turn").count() == 0
    box.press("Enter")
    expect(page.locator("article.turn")).to_have_count(1)
    assert sent and page.locator("article.turn .you").inner_text().endswith("Line one\nline two")


def test_open_in_the_document_shows_the_marked_passage(page: Page, server: Server, artifacts: Path) -> None:
    errors = console_errors(page)
    page.goto(server.url + "/")
    turn = ask(page, QUESTION)
    first = turn.locator(".citation").first
    marked = " ".join(first.locator("mark").inner_text().split())
    first.locator("a.open").click()
    page.wait_for_url(re.compile(r"/documents/[^?]+\?start=\d+&end=\d+&hs=\d+&he=\d+(&xs=\d+&xe=\d+)?#passage$"))
    passage = page.locator("#passage")
    expect(passage).to_be_visible()
    expect(passage).to_be_in_viewport()
    box = passage.bounding_box()
    assert box is not None and 0 <= box["y"] < 900 and box["x"] >= 0
    answer_mark = page.locator("mark.answer-mark")  # in pieces when page markers or the exact answer cut it
    expect(answer_mark.first).to_be_visible()
    assert " ".join("".join(answer_mark.all_inner_texts()).split()) == marked
    passage_text = "".join(page.locator(".document > mark.passage-mark").all_inner_texts())
    assert marked in " ".join(passage_text.split())
    page.screenshot(path=str(artifacts / "document.png"))
    assert errors == []


def test_a_follow_up_names_the_earlier_question(page: Page, server: Server, artifacts: Path) -> None:
    page.goto(server.url + "/")
    first = ask(page, FIRST)
    expect(first.locator("blockquote.answer")).to_be_visible()
    expect(first.locator(".context")).to_have_count(0)
    second = ask(page, FOLLOW_UP)
    expect(second.locator(".context")).to_contain_text(FIRST)
    expect(second.locator("blockquote.answer strong.exact")).to_have_text("79")
    expect(second.locator("blockquote.answer")).to_be_visible()
    expect(second.locator("blockquote.answer")).to_be_in_viewport()
    settle_scroll(page)
    page.screenshot(path=str(artifacts / "chat.png"))  # the README's docs/screenshot.png is a copy of one of these


def test_the_exact_answer_is_bold_inside_the_quoted_sentence(page: Page, exact_server: Server, artifacts: Path) -> None:
    errors = console_errors(page)
    request = urllib.request.Request(
        exact_server.url + "/api/ask",
        data=json.dumps({"question": QUESTION}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        exact = json.load(r)["answer"]["exact"]["text"]
    page.goto(exact_server.url + "/")
    turn = ask(page, QUESTION)
    sentence = turn.locator("blockquote.answer p")
    bold = sentence.locator("strong.exact")
    expect(bold).to_have_count(1)
    expect(bold).to_have_text(exact)
    assert exact in sentence.inner_text()
    weight = "e => Number(getComputedStyle(e).fontWeight)"
    assert bold.evaluate(weight) >= 700 > sentence.evaluate(weight)  # the span stands out of its sentence
    card = turn.locator(".citation mark.hl-answer strong.exact").first
    expect(card).to_have_text(exact)
    settle_scroll(page)
    page.screenshot(path=str(artifacts / "chat-exact.png"))
    turn.locator(".citation", has=page.locator("mark.hl-answer")).first.locator("a.open").click()
    page.wait_for_url(re.compile(r"&xs=\d+&xe=\d+#passage$"))
    expect(page.locator("#passage mark.answer-mark strong.exact")).to_have_text(exact)
    assert errors == []


def test_an_off_topic_question_shows_the_closest_passages(page: Page, server: Server) -> None:
    page.goto(server.url + "/")
    turn = ask(page, OFF_TOPIC)
    expect(turn.locator(".reply")).to_contain_text("could not find")
    expect(turn.locator(".reply")).to_contain_text("Closest passages")
    expect(turn.locator("blockquote.answer")).to_have_count(0)
    assert turn.locator(".citation").count() >= 1


def test_the_chat_works_without_javascript(browser: Browser, server: Server) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        page.locator("#q").fill(QUESTION)
        with page.expect_navigation():
            page.get_by_role("button", name="Ask").click()
        expect(page.locator("article.turn")).to_have_count(1)
        expect(page.locator("article.turn blockquote.answer")).to_contain_text("1992")
        page.locator("#q").fill(ACCORD)
        with page.expect_navigation():
            page.get_by_role("button", name="Ask").click()
        expect(page.locator("article.turn")).to_have_count(2)
        expect(page.locator("article.turn").first.locator(".you")).to_contain_text(QUESTION)
        expect(page.locator("article.turn").first.locator("blockquote.answer")).to_contain_text("1992")
        expect(page.locator("article.turn").nth(1).locator(".you")).to_contain_text(ACCORD)
        expect(page.locator("article.turn").nth(1).locator("blockquote.answer")).to_contain_text("Accord")
        expect(page.locator("#q")).to_have_value("")
    finally:
        context.close()


def test_script_in_a_document_never_runs(page: Page, hostile_server: Server) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(hostile_server.url + "/")
    turn = ask(page, XSS_QUESTION)
    cloves = turn.locator(".citation", has_text="cloves.txt").first
    expect(cloves).to_be_visible()
    expect(cloves.locator(".passage")).to_contain_text("<script>window.__xss=1</script>")  # shown as text
    assert page.evaluate("window.__xss") is None
    assert page.locator("article.turn img, article.turn script, article.turn a[href^='javascript']").count() == 0
    cloves.locator("a.open").click()
    page.wait_for_url(re.compile(r"/documents/cloves\.txt"))
    expect(page.locator(".document")).to_contain_text('<img src=x onerror="window.__xss=1">')
    page.wait_for_timeout(200)  # an image error handler would have fired by now
    assert page.evaluate("window.__xss") is None
    assert page.locator(".document img, .document script, .document a").count() == 0
    assert dialogs == []


def test_a_question_with_script_is_shown_as_text(page: Page, hostile_server: Server) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(hostile_server.url + "/")
    question = '<img src=x onerror="window.__xss=1"><script>window.__xss=1</script> When are cloves harvested?'
    turn = ask(page, question)
    expect(turn.locator(".you")).to_contain_text(question)
    page.wait_for_timeout(200)
    assert page.evaluate("window.__xss") is None
    assert dialogs == []


def test_the_chat_fits_a_phone(browser: Browser, server: Server, artifacts: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        no_scroll = "document.documentElement.scrollWidth <= window.innerWidth + 1"
        assert page.evaluate(no_scroll)
        turn = ask(page, QUESTION)
        expect(turn.locator("blockquote.answer")).to_contain_text("1992")
        assert page.evaluate(no_scroll), page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        page.screenshot(path=str(artifacts / "chat-phone.png"))
        turn.locator(".citation a.open").first.click()
        expect(page.locator("#passage")).to_be_in_viewport()
        assert page.evaluate(no_scroll)
    finally:
        context.close()


def test_the_api_docs_render_offline(page: Page, server: Server) -> None:
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server.url) else None)
    page.goto(server.url + "/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    expect(page.get_by_text("/api/ask").first).to_be_visible()
    assert outside == []


def test_the_admin_page_has_no_script_error_when_admin_is_off(page: Page, server: Server) -> None:
    """admin.js used to run with no admin form on the page and throw on the missing #token."""
    errors = console_errors(page)
    page.goto(server.url + "/admin")
    expect(page.get_by_text("RAG_ADMIN_TOKEN")).to_be_visible()
    page.wait_for_timeout(200)
    assert errors == []


@pytest.mark.parametrize(
    "path",
    [
        "/documents/../../etc/passwd",
        "/documents/%2e%2e/%2e%2e/etc/passwd",
        "/documents//etc/passwd",
        "/documents/..%2f..%2fetc%2fpasswd",
        "/static/../rag/server/api.py",
        "/static/..%2frag%2fserver.py",
    ],
)
def test_the_live_server_refuses_traversal_sent_as_is(server: Server, path: str) -> None:
    """uvicorn passes a path on without removing `..`: send it byte for byte, as curl --path-as-is would."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read().decode("utf-8", "replace")
    finally:
        conn.close()
    assert r.status in (400, 404), (path, r.status)
    assert "root:" not in body and "create_app" not in body


# The chat's polish: no focus rings on the passage, a phone-sized input and header, merged overlapping passages.

FOCUS_RINGS = """() => {
  const colors = (s) => s.match(/rgba?\\([^)]*\\)/g) || [];
  const dark = (c) => {
    const [r, g, b, a = 1] = c.match(/[\\d.]+/g).map(Number);
    return a > 0.1 && (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255 < 0.75;
  };
  const doc = document.querySelector(".document");
  const rings = [];
  for (const e of [doc, ...doc.querySelectorAll("*")]) {
    const s = getComputedStyle(e);
    const name = e.tagName + (e.id ? "#" + e.id : "") + "." + e.className;
    const outlined = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0;
    if (outlined && (e !== doc || colors(s.outlineColor).some(dark))) rings.push(name + " outline " + s.outlineColor);
    if (s.boxShadow !== "none" && colors(s.boxShadow).some(dark)) rings.push(name + " box-shadow " + s.boxShadow);
  }
  return rings;
}"""


def api_ask(server: Server, question: str) -> dict[str, Any]:
    request = urllib.request.Request(
        server.url + "/api/ask",
        data=json.dumps({"question": question}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return dict(json.load(r))


def test_the_document_view_draws_no_focus_ring_around_the_passage(page: Page, server: Server, artifacts: Path) -> None:
    """The passage takes the focus on arrival (the reading and Tab position): no ring around each of its lines,
    at most a light one around the document, whether the link was clicked or followed from the keyboard."""
    for how in ("click", "keyboard"):
        page.goto(server.url + "/")
        link = ask(page, QUESTION).locator(".citation a.open").first
        if how == "click":
            link.click()
        else:
            link.focus()
            page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"#passage$"))
        expect(page.locator("#passage")).to_be_focused()
        assert page.evaluate(FOCUS_RINGS) == [], how
        page.screenshot(path=str(artifacts / f"document-{how}.png"))
        page.keyboard.press("Tab")  # the next link after the passage takes the focus, with the usual ring
        assert page.evaluate("document.activeElement.tagName") == "A"
        assert page.evaluate(FOCUS_RINGS) == [], how


def test_the_phone_input_shows_its_whole_placeholder_and_the_header_is_one_line(
    browser: Browser, server: Server, artifacts: Path
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        box = page.locator("#q")
        fits = box.evaluate(
            """e => {
              const s = getComputedStyle(e), c = document.createElement("canvas").getContext("2d");
              c.font = `${s.fontStyle} ${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
              const room = e.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
              return [c.measureText(e.placeholder).width, room, e.scrollWidth, e.clientWidth];
            }"""
        )
        text_width, room, scroll_width, client_width = fits
        assert text_width <= room and scroll_width <= client_width, fits
        ask_button = page.get_by_role("button", name="Ask").bounding_box()
        field = box.bounding_box()
        assert ask_button and field and ask_button["x"] + ask_button["width"] <= 390 and field["x"] >= 0
        header = page.locator("header.top")
        links = header.locator("a:visible")
        assert links.count() >= 3
        lines = header.evaluate(
            """h => [...h.querySelectorAll("a")].filter(a => a.offsetParent).map(a => {
              const r = a.getClientRects(); return [r.length, Math.round(r[0].top), Math.round(r[0].height)];
            })"""
        )
        assert all(n == 1 for n, _, _ in lines), lines  # no link wraps
        tops = {top for _, top, _ in lines}
        assert max(tops) - min(tops) <= 4, lines  # the brand and the links side by side
        height = header.bounding_box()
        assert height and height["height"] <= 2 * max(h for _, _, h in lines) + 24, (height, lines)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        page.screenshot(path=str(artifacts / "chat-phone-empty.png"))
    finally:
        context.close()


def test_overlapping_citations_show_their_shared_sentence_marked_once(
    page: Page, server: Server, artifacts: Path
) -> None:
    body = api_ask(server, QUESTION)
    cites = body["citations"]
    pairs = [
        (a["n"], b["n"])
        for i, a in enumerate(cites)
        for b in cites[i + 1 :]
        if a["source"] == b["source"] and a["start"] <= b["end"] and b["start"] <= a["end"]
    ]
    assert pairs, "this question cites two neighbouring (overlapping) chunks of one document"
    shared = [(a, b) for a, b in pairs if cites[a - 1]["highlight"] == cites[b - 1]["highlight"]]
    page.goto(server.url + "/")
    turn = ask(page, QUESTION)
    cards = turn.locator(".citation")
    heads = cards.locator(".cite-head .n").all_text_contents()  # text, not innerText: folded cards count too
    numbers = [[int(n) for n in re.findall(r"\d+", t)] for t in heads]
    assert sorted(n for ns in numbers for n in ns) == [c["n"] for c in cites]  # every citation, once
    for a, b in pairs:
        assert any(a in ns and b in ns for ns in numbers), (a, b, numbers)  # overlapping ones share a card
    marks = [" ".join(t.split()) for t in cards.locator("mark").all_text_contents()]
    assert len(marks) == len(set(marks)), marks
    for a, _ in shared:
        h = cites[a - 1]["highlight"]
        sentence = " ".join(
            cites[a - 1]["text"][h["start"] - cites[a - 1]["start"] : h["end"] - cites[a - 1]["start"]].split()
        )
        assert marks.count(sentence) == 1, sentence
    answer = " ".join(body["answer"]["text"].split())
    assert marks.count(answer) == 1
    settle_scroll(page)
    page.screenshot(path=str(artifacts / "chat-merged.png"), full_page=True)


# ---------------------------------------------------------------------------------------------------------------
# Short replies (issue #21): the passages that matter, the rest folded; screenshots after three questions


def ask_three(page: Page) -> list[Any]:
    turns = [ask(page, q) for q in THREE]
    for turn in turns:
        expect(turn.locator("blockquote.answer")).to_be_visible()
    settle_scroll(page)
    return turns


def test_three_answers_on_a_phone_stay_short(browser: Browser, server: Server, artifacts: Path) -> None:
    context = browser.new_context(**PHONE)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        turns = ask_three(page)
        height = page.evaluate("document.body.scrollHeight")
        print(f"phone page after three answers: {height} px")
        assert height < PHONE_HEIGHT, height
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=str(artifacts / "chat-phone-three.png"), full_page=True)
        more = turns[0].locator("details.more-passages")
        expect(more.locator("summary")).to_have_text(re.compile(r"^\d+ more passages?$"))
        expect(more.locator(".citation").first).to_be_hidden()  # folded until asked for
        more.locator("summary").click()
        expect(more.locator(".citation").first).to_be_visible()
        assert not turns[0].get_by_text("score 0.00").count()
    finally:
        context.close()


def test_three_answers_on_a_desktop(page: Page, server: Server, artifacts: Path) -> None:
    page.goto(server.url + "/")
    turns = ask_three(page)
    painted = """e => getComputedStyle(e).backgroundColor"""
    for turn in turns:  # the quoted sentence is marked softly; only its exact span has the answer's yellow
        exact = turn.locator(".citation mark.hl-answer strong.exact")
        expect(exact).to_have_count(1)
        assert exact.evaluate(painted) != turn.locator(".citation mark.hl-answer").evaluate(painted)
        weight = turn.locator("blockquote.answer p").evaluate("e => getComputedStyle(e).fontWeight")
        assert weight == "400"
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / "chat-three.png"))  # the README's docs/screenshot.png is a copy of it


def test_the_admin_status_is_readable_and_fits_a_small_phone(browser: Browser, admin_server: Server) -> None:
    context = browser.new_context(**(PHONE | {"viewport": {"width": 360, "height": 740}}))
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        errors = console_errors(page)
        page.goto(admin_server.url + "/admin")
        page.locator("#token").fill(ADMIN_TOKEN)
        page.locator("#token").dispatch_event("change")
        status = page.locator("#index-status")
        expect(status.locator("dt").first).to_have_text("Documents")
        expect(status).to_contain_text("5 (")
        assert "{" not in status.inner_text()  # terms and values, not JSON
        assert page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]") == [360, 360]
        expect(page.locator("#languages")).to_contain_text("rag index --full")
        assert errors == []
    finally:
        context.close()
