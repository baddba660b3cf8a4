"""The book, built for real at smoke size (all ten notebooks executed through papermill, then rendered), opens
from file:// in a headless Chromium with no server and no network: the index lists the chapters in order, its
link leads to chapter 03, whose matplotlib figures and plotly graphs are drawn, and nothing is logged as an error.

About 3.5 minutes on a 2-core machine (measured 191-211 s), nearly all of it executing the notebooks;
chapter 04's smoke student alone takes about 90 s (docs/book.md)."""
import re
import time

import pytest

from itespy.book.render import unconverted_tex

from browser_helpers import CHROMIUM_ARGS, REPO, chromium_executable

pytestmark = pytest.mark.browser
ARTIFACTS = REPO / "test-artifacts" / "book"  # gitignored: a full-page screenshot of chapter 03


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    exe = chromium_executable()
    if exe is None:
        pytest.skip("chromium not found on PATH (Debian: apt-get install -y chromium; .ci/run installs it)")
    pytest.importorskip("playwright.sync_api")
    from itespy.book import build_book
    root = tmp_path_factory.mktemp("book")
    t0 = time.time()
    manifest = build_book(profile="smoke", out=root / "site", work=root / "work", threads=1, log=lambda *_: None)
    print(f"\nbook built in {time.time() - t0:.0f} s, {manifest['bytes'] / 1e6:.1f} MB")
    assert not manifest["failed"], [(c["stem"], c["error"]) for c in manifest["chapters"] if c["status"] != "ok"]
    return root / "site", manifest, exe


def test_the_book_opens_offline_and_chapter_03_shows_its_figures(book):
    from playwright.sync_api import sync_playwright
    site, manifest, exe = book
    assert [c["stem"] for c in manifest["chapters"]] == sorted(p.stem for p in (REPO / "notebooks").glob("0*.ipynb"))
    assert len(list(site.rglob("plotly*.js"))) == 1  # one copy for every page
    errors, remote = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda r: remote.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
            page.goto((site / "index.html").as_uri())
            links = page.eval_on_selector_all(".book-toc li > a", "els => els.map(a => a.getAttribute('href'))")
            assert links == [f"{c['stem']}.html" for c in manifest["chapters"]]
            page.click("a[href='03_teacher.html']")
            page.wait_for_url("**/03_teacher.html")
            page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
            page.wait_for_load_state("load")
            state = page.evaluate("""() => ({
              images: Array.from(document.querySelectorAll('.jp-OutputArea-output img'))
                .map(i => [i.naturalWidth, i.naturalHeight]),
              plots: Array.from(document.querySelectorAll('.js-plotly-plot')).map(g => ({
                traces: (g.data || []).length, is3d: !!(g._fullLayout && g._fullLayout.scene),
                points: (g.data || []).reduce((n, t) => n + (t.x ? t.x.length : 0), 0)})),
              equations: document.querySelectorAll('math').length,
              mathText: Array.from(document.querySelectorAll('math, .book-tex')).map(m => m.textContent),
              provenance: document.querySelector('.book-provenance').textContent,
              widgetNotes: document.querySelectorAll('.book-widget-note a[href$=".ipynb"]').length})""")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "chapter03.png"), full_page=True)
        finally:
            browser.close()
    assert not errors, f"errors in the browser console: {errors}"
    assert not remote, f"the book fetched from the network: {remote}"
    assert len(state["images"]) >= 4 and all(w > 100 and h > 100 for w, h in state["images"]), state["images"]
    assert any(p["is3d"] and p["traces"] > 0 and p["points"] > 0 for p in state["plots"]), state["plots"]
    assert state["equations"] > 10  # MathML, typeset at build time
    raw = [t for t in state["mathText"] if unconverted_tex(t)]
    assert not raw, f"chapter 03 shows raw TeX in {len(raw)} equation(s): {raw[:3]}"
    for chapter in manifest["chapters"]:  # every page: no equation left as TeX (MathML text or a fallback)
        html = (site / f"{chapter['stem']}.html").read_text()
        left = [m for m in re.findall(r"<math.*?</math>|<code class=\"book-tex\">.*?</code>", html, re.S)
                if unconverted_tex(m) or "book-tex" in m]
        assert not left, f"{chapter['stem']}.html shows raw TeX: {left[:2]}"
    assert state["widgetNotes"] >= 1  # the comparison widget: a note linking to the notebook, and its figures
    assert "profile smoke" in " ".join(state["provenance"].split()) and "synthetic" in state["provenance"]
