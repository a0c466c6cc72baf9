"""The built book (`_build/html`) opened in a real browser: headless Chromium from Debian's
`chromium` and `chromium-driver`, driven by Selenium through the system chromedriver (no
browser or driver download).

The pages are served by a local threaded `http.server` on 127.0.0.1, so they behave as
published, and every other host is unreachable for the browser (`--host-resolver-rules`):
the widget and math scripts that pages load from CDNs fail, and the text and figures must
still be there. For every page in `_toc.yml` (read at test time, so a chapter added later is
checked too) the test checks: the page loads, its h1 is the source's first heading, every
image in the article has a non-zero natural size, a notebook page has a Colab link to its own
notebook in the repository of `_config.yml`, no local resource fails to load, and every
internal link (href/src) resolves to a file of the build, with its `#anchor` present on the
target page. The previous/next links are walked from the intro through the whole book and
back, and must visit the pages in `_toc.yml` order. Screenshots of the intro and a chapter
go to `_build/screenshots/` as CI artefacts.

Without a build (or with one older than its sources) or without Chromium, the tests skip, so
a plain `pytest --nbval` works anywhere; with LENET_BROWSER_TESTS=1 (set by `.ci/run`, after
the book build) they fail instead. LENET_BOOK_HTML points them at another build folder.
"""
from __future__ import annotations

import functools
import html.parser
import json
import os
import re
import shutil
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("LENET_BOOK_HTML", ROOT / "_build" / "html")).resolve()
SCREENSHOTS = HTML.parent / "screenshots"
REQUIRED = os.environ.get("LENET_BROWSER_TESTS") == "1"
CHROMIUM = os.environ.get("LENET_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LENET_CHROMEDRIVER", "/usr/bin/chromedriver")
COLAB = "https://colab.research.google.com"

os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never try a download


def unavailable(reason: str):
    """Skip in a plain test run; fail loudly when CI asked for the browser tests."""
    if REQUIRED:
        pytest.fail(f"LENET_BROWSER_TESTS=1 but {reason}", pytrace=False)
    pytest.skip(reason)


# ---------------------------------------------------------------- the book's own description

def toc_docnames() -> list[str]:
    """Docnames (`book/intro`, `book/01_architecture`, ...) in reading order, from `_toc.yml`."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    names = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                names.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk({k: v for k, v in toc.items() if k != "root"})
    return [re.sub(r"\.(ipynb|md)$", "", n) for n in names]


def source_of(docname: str) -> Path:
    for ext in (".ipynb", ".md"):
        if (ROOT / (docname + ext)).is_file():
            return ROOT / (docname + ext)
    raise FileNotFoundError(f"_toc.yml names {docname!r}, but neither .ipynb nor .md exists")


def first_heading(source: Path) -> str:
    """The source's first `# ` heading, as plain text (inline Markdown markup removed)."""
    if source.suffix == ".ipynb":
        cells = json.loads(source.read_text(encoding="utf-8"))["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    else:
        text = source.read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("# "):
            heading = line[2:].strip()
            heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # [text](link)
            return normalise(re.sub(r"[`*]|(?<!\w)_|_(?!\w)", "", heading))
    raise AssertionError(f"{source} has no '# ' heading")


def normalise(text: str) -> str:
    return " ".join(text.replace("\u00b6", "").split())


def repository() -> tuple[str, str, str]:
    """(owner/repo, branch, path_to_book) from `_config.yml`."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    repo = config["repository"]
    match = re.match(r"https?://github\.com/([^/]+/[^/]+?)(?:\.git)?/?$", repo["url"])
    assert match, f"_config.yml repository.url is not a GitHub repository: {repo['url']!r}"
    return match.group(1), repo.get("branch", "main"), (repo.get("path_to_book") or "").strip("/")


def expected_colab(docname: str) -> str:
    slug, branch, path_to_book = repository()
    path = "/".join(p for p in (path_to_book, docname + ".ipynb") if p)
    return f"{COLAB}/github/{slug}/blob/{branch}/{path}"


DOCNAMES = toc_docnames()


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if value and (key == "id" or (key == "name" and tag == "a")):
                self.ids.add(value)


@functools.lru_cache(maxsize=None)
def ids_in(path: Path) -> frozenset[str]:
    parser = _Ids()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return frozenset(parser.ids)


# ---------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def book() -> Path:
    if not (HTML / "index.html").is_file():
        unavailable(f"no built book at {HTML} (run: jupyter-book build . -W -n --keep-going)")
    if not REQUIRED:
        for docname in DOCNAMES:
            page = HTML / (docname + ".html")
            if not page.is_file():
                pytest.skip(f"{page} was not built (rebuild the book to check it)")
            if page.stat().st_mtime < source_of(docname).stat().st_mtime:
                pytest.skip(f"{page} is older than its source (rebuild the book to check it)")
    return HTML


@pytest.fixture(scope="session")
def server(book):
    """`http.server` on a free loopback port, one thread per request, serving the build."""
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(book)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="book-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


@pytest.fixture(scope="session")
def driver(server):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (pip install -r requirements.txt)")
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            unavailable(f"{binary} is missing (apt-get install chromium chromium-driver)")

    profile = tempfile.mkdtemp(prefix="lenet-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900", "--hide-scrollbars",
                f"--user-data-dir={profile}",
                # every host but the local server is unresolvable: the CDNs are gone for sure
                '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(driver, url: str) -> None:
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(url)
    assert driver.execute_script("return document.readyState") == "complete", url


def wait_images(driver, timeout: float = 20.0) -> list[dict]:
    """Every <img> of the article, once loaded or failed (lazy ones are made eager first)."""
    script = """
        const imgs = [...document.querySelectorAll('article img, main img')];
        const unique = [...new Set(imgs)];
        unique.forEach(i => { if (i.loading === 'lazy') i.loading = 'eager'; });
        return unique.map(i => ({src: i.currentSrc || i.src, complete: i.complete,
                                 w: i.naturalWidth, h: i.naturalHeight}));
    """
    deadline = time.monotonic() + timeout
    images = driver.execute_script(script)
    while not all(i["complete"] for i in images) and time.monotonic() < deadline:
        time.sleep(0.2)
        images = driver.execute_script(script)
    return images


def local_target(url: str, base: str) -> tuple[Path, str] | None:
    """(file in the build, fragment) for a URL on the local server, else None."""
    if not url.startswith(base):
        return None
    url, fragment = urldefrag(url)
    path = unquote(urlsplit(url).path).lstrip("/")
    target = HTML / path
    if path == "" or path.endswith("/") or target.is_dir():
        target = target / "index.html"
    return target, unquote(fragment)


def page_url(server: str, docname: str) -> str:
    return server + docname + ".html"


# ------------------------------------------------------------------------------------- tests

def test_cdns_are_blocked(driver, server):
    """The premise of 'renders without its CDN scripts': the browser cannot reach any CDN."""
    open_page(driver, page_url(server, DOCNAMES[0]))
    result = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('https://cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager/package.json')
          .then(r => done('reached: ' + r.status), e => done('blocked'));
    """)
    assert result == "blocked"


@pytest.mark.parametrize("docname", DOCNAMES)
def test_page(driver, server, docname):
    page = HTML / (docname + ".html")
    assert page.is_file(), f"{docname} is in _toc.yml but {page} was not built"
    url = page_url(server, docname)
    open_page(driver, url)
    problems: list[str] = []

    # title: the page's h1 is the source's first heading
    h1 = driver.execute_script("""
        const h = document.querySelector('article h1, main h1');
        if (!h) return null;
        const c = h.cloneNode(true);
        c.querySelectorAll('.headerlink').forEach(e => e.remove());
        return c.textContent;
    """)
    want = first_heading(source_of(docname))
    if h1 is None:
        problems.append("no <h1> in the article")
    elif normalise(h1) != want:
        problems.append(f"h1 is {normalise(h1)!r}, the source's first heading is {want!r}")
    if want.split()[-1] not in driver.title:
        problems.append(f"<title> {driver.title!r} does not carry the heading {want!r}")

    # the text is there without the CDN scripts (widgets, require.js, MathJax all blocked)
    text = driver.execute_script(
        "const a = document.querySelector('article.bd-article') || document.querySelector('main');"
        "return a ? a.innerText : '';")
    if len(text.split()) < 50:
        problems.append(f"the article shows only {len(text.split())} words of text")

    # figures: every image in the article has loaded with a non-zero natural size
    for image in wait_images(driver):
        if not image["complete"] or image["w"] == 0 or image["h"] == 0:
            problems.append(f"image not rendered ({image['w']}x{image['h']}): {image['src'][:120]}")
    if source_of(docname).suffix == ".ipynb":
        nb = json.loads(source_of(docname).read_text(encoding="utf-8"))
        shown_cells = [c for c in nb["cells"] if c["cell_type"] == "code" and not
                       {"remove-output", "remove-cell"} & set(c.get("metadata", {}).get("tags", []))]
        pngs = sum("image/png" in o.get("data", {}) for c in shown_cells for o in c.get("outputs", []))
        shown = driver.execute_script(
            "return document.querySelectorAll('article .cell_output img, main .cell_output img').length")
        if shown < pngs:
            problems.append(f"the notebook has {pngs} PNG outputs, the page shows {shown} images")

    # Colab: a notebook page links to its own notebook; no page links Colab elsewhere
    colab = [h for h in driver.execute_script(
        "return [...document.querySelectorAll('a[href]')].map(a => a.href)") if h.startswith(COLAB)]
    if source_of(docname).suffix == ".ipynb":
        if expected_colab(docname) not in colab:
            problems.append(f"no Colab link to {expected_colab(docname)} (found: {colab})")
    for href in colab:
        if href != expected_colab(docname):
            problems.append(f"Colab link to another notebook: {href}")

    # internal links and resources: each resolves to a file of the build, anchors exist
    refs = driver.execute_script("""
        const out = [];
        document.querySelectorAll('a[href]').forEach(e => out.push(e.href));
        document.querySelectorAll('link[href]').forEach(e => out.push(e.href));
        document.querySelectorAll('img[src], script[src], iframe[src], source[src]')
            .forEach(e => out.push(e.src));
        return out;
    """)
    for ref in sorted(set(refs)):
        found = local_target(ref, server)
        if found is None:
            continue
        target, fragment = found
        if not target.is_file():
            problems.append(f"broken link: {ref} ({target.relative_to(HTML)} is not in the build)")
        elif fragment and target.suffix == ".html" and fragment not in ids_in(target):
            problems.append(f"broken anchor: {ref} (no id {fragment!r} in {target.relative_to(HTML)})")

    # nothing from the local server failed to load (404s of scripts, styles, images, fonts);
    # script errors are not counted: sphinx-book-theme itself declares THEBE_JS_URL twice
    for entry in driver.get_log("browser"):
        message = entry.get("message", "")
        if (message.startswith(server) and "Failed to load resource" in message
                and "favicon.ico" not in message):
            problems.append(f"browser error: {message[:200]}")

    assert not problems, f"{url}:\n  " + "\n  ".join(problems)


def test_previous_next_navigation(driver, server, book):
    """Walk the book by its 'next' links from the intro, then back by its 'previous' links."""
    want = [page_url(server, d) for d in DOCNAMES]
    open_page(driver, server)  # index.html leads to the root page
    if driver.current_url.rstrip("/") + "/" == server:
        links = driver.execute_script("return [...document.querySelectorAll('a[href]')].map(a => a.href)")
        pytest.fail(f"index.html does not lead to the intro (links: {links[:5]})")
    assert urldefrag(driver.current_url)[0] == want[0], "index.html must lead to the intro"

    def follow(selector: str) -> bool:
        links = driver.find_elements("css selector", selector)
        if not links:
            return False
        before = driver.current_url
        driver.execute_script("arguments[0].click()", links[0])
        deadline = time.monotonic() + 30
        while driver.current_url == before and time.monotonic() < deadline:
            time.sleep(0.05)
        while (driver.execute_script("return document.readyState") != "complete"
               and time.monotonic() < deadline):
            time.sleep(0.05)
        assert driver.current_url != before, f"{selector} on {before} leads nowhere"
        return True

    visited = [urldefrag(driver.current_url)[0]]
    while follow("a.right-next") and len(visited) <= 2 * len(want):
        visited.append(urldefrag(driver.current_url)[0])
    name = lambda url: url[len(server):].removesuffix(".html")  # noqa: E731
    assert visited == want, f"the 'next' links visit {[name(u) for u in visited]}, _toc.yml has {DOCNAMES}"

    back = [visited[-1]]
    while follow("a.left-prev") and len(back) <= 2 * len(want):
        back.append(urldefrag(driver.current_url)[0])
    assert back == want[::-1], f"the 'previous' links visit {[name(u) for u in back]}, not _toc.yml backwards"


def test_screenshots(driver, server, book):
    """CI artefacts: the intro, and a chapter at its top and at its first figure."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    open_page(driver, page_url(server, DOCNAMES[0]))
    assert driver.save_screenshot(str(SCREENSHOTS / "intro.png"))

    chapters = [d for d in DOCNAMES if source_of(d).suffix == ".ipynb"]
    assert chapters, "_toc.yml lists no notebook chapter"
    chapter = next((d for d in chapters if "architecture" in d), chapters[0])
    open_page(driver, page_url(server, chapter))
    name = Path(chapter).name
    assert driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    wait_images(driver)
    if driver.execute_script("""
            const img = document.querySelector('article .cell_output img, article img');
            if (!img) return false;
            img.scrollIntoView({block: 'center'});
            return true;"""):
        time.sleep(0.3)
        assert driver.save_screenshot(str(SCREENSHOTS / f"{name}_figure.png"))
    for png in SCREENSHOTS.glob("*.png"):
        assert png.stat().st_size > 10_000, f"{png} is suspiciously small"
