"""The book's build: execute the chapters, render the site, write the manifest (``book.json``)."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import nbformat

from .. import __version__
from ..io import atomic_write_json, atomic_write_text, utc_now
from ..reproduce.jobs import code_version
from .chapters import execute_chapters
from .render import (chapter_summary, chapter_title, make_exporter, render_chapter, render_index,
                     render_markdown_page, site_notebook, write_static)

BOOK_TITLE = "ITES, the course"
MANIFEST_FORMAT = "itespy-book/1"
DATA_NOTE = "data: this chapter's own sample (it takes no DATA parameter)"
READING_AIDS = {"glossary.html": ("docs/glossary.md", "Glossary of the notation, and a reading order of the related work")}


def _figures_text(book: dict) -> str:
    parts = [f"{book.get('images', 0)} figure(s)"]
    if book.get("figures"):
        parts.append(f"{book['figures']} interactive plotly graph(s)")
    if book.get("widgets"):
        parts.append(f"{book['widgets']} widget(s)")
    return ", ".join(parts)


def render_site(records: list, out, command: str = "python -m itespy book", log=print) -> dict:
    """Render executed chapters (records of :func:`execute_chapters`) into the site ``out``; returns the
    manifest written to ``out/book.json``."""
    from ..reproduce.paths import NOTEBOOKS_DIR
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    exporter = make_exporter()
    write_static(exporter, out)
    shutil.rmtree(out / "files", ignore_errors=True)
    (out / "notebooks").mkdir(exist_ok=True)
    notebooks = {r["stem"]: nbformat.read(r["executed"], as_version=4) if Path(r["executed"]).exists()
                 else nbformat.read(NOTEBOOKS_DIR / f"{r['stem']}.ipynb", as_version=4) for r in records}
    titles = {stem: chapter_title(nb) for stem, nb in notebooks.items()}
    chapters = []
    for i, record in enumerate(records):
        stem = record["stem"]
        nb = notebooks[stem]
        link = lambda k: {"href": f"{records[k]['stem']}.html", "title": titles[records[k]["stem"]]}  # noqa: E731
        params = record.get("parameters", {})
        book = {**{k: record.get(k) for k in ("profile", "quick", "device", "status", "error", "cell", "seconds",
                                              "finished", "itespy", "code_version", "source")},
                "stem": stem, "title": titles[stem], "book_title": BOOK_TITLE, "static": "static",
                "data": params.get("data"), "data_note": DATA_NOTE,
                "notebook_href": f"notebooks/{stem}.ipynb", "notebook_name": f"{stem}.ipynb",
                "parameters_text": json.dumps(params, indent=1, sort_keys=True),
                "prev": link(i - 1) if i > 0 else None, "next": link(i + 1) if i + 1 < len(records) else None,
                "site": str(out), "cwd": str(NOTEBOOKS_DIR)}
        t0 = time.time()
        page, book = render_chapter(exporter, nb, book)
        book["images"] = page.count('src="data:image/')
        atomic_write_text(out / f"{stem}.html", page)
        nbformat.write(site_notebook(nb), str(out / "notebooks" / f"{stem}.ipynb"))
        log(f"page {stem}.html: {len(page) / 1e6:.1f} MB, {_figures_text(book)} ({time.time() - t0:.1f} s)")
        chapters.append({"stem": stem, "title": titles[stem], "href": f"{stem}.html", "summary_html": chapter_summary(nb),
                         "notebook_href": f"notebooks/{stem}.ipynb", "notebook_name": f"{stem}.ipynb",
                         "figures_text": _figures_text(book), "images": book["images"],
                         "plotly_figures": book.get("figures", 0), "widgets": book.get("widgets", 0),
                         "files": book.get("files", []), "status": record["status"], "error": record.get("error"),
                         "seconds": record.get("seconds"), "reused": record.get("reused", False),
                         "finished": record.get("finished"), "parameters": params})
    first = records[0] if records else {}
    context = {"book_title": BOOK_TITLE, "chapters": chapters, "command": command, "built": utc_now(),
               "profile": first.get("profile"), "quick": first.get("quick"), "device": first.get("device"),
               "data": first.get("data"), "itespy": __version__, "code_version": code_version(),
               "repository": os.environ.get("GITHUB_REPOSITORY", ""),
               "failed": [c["stem"] for c in chapters if c["status"] != "ok"]}
    from ..reproduce.paths import REPO
    context["reading_aids"] = []
    for page, (source, title) in READING_AIDS.items():
        if (REPO / source).exists():
            atomic_write_text(out / page, render_markdown_page(REPO / source, title))
            context["reading_aids"].append({"href": page, "title": title})
    atomic_write_text(out / "index.html", render_index(context))
    manifest = {"format": MANIFEST_FORMAT, **{k: v for k, v in context.items() if k != "book_title"},
                "title": BOOK_TITLE}
    atomic_write_json(out / "book.json", manifest)
    return manifest


def build_book(profile: str = "smoke", out=None, data: str = "synthetic", device: str = "cpu", work=None,
               cache=None, quick: bool | None = None, only=None, force: bool = False, timeout: int | None = None,
               threads: int | None = None, jobs: int = 1, command: str | None = None, log=print) -> dict:
    """Execute the chapters (see :func:`~itespy.book.chapters.execute_chapters`) and render the site into
    ``out`` (default ``runs/book-PROFILE/site``). Returns the manifest plus ``out``, ``seconds``, ``bytes``."""
    t0 = time.time()
    work = Path(work or f"runs/book-{profile}")
    out = Path(out or work / "site")
    records = execute_chapters(profile, data, device, work, cache, quick, only, force, timeout, threads, jobs,
                               log=log)
    manifest = render_site(records, out, command or f"python -m itespy book --profile {profile}", log=log)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    manifest.update(out=str(out), seconds=round(time.time() - t0, 1), bytes=size)
    log(f"book: {out / 'index.html'} ({len(records)} chapters, {size / 1e6:.1f} MB, {manifest['seconds']:.0f} s)"
        + (f"; FAILED: {', '.join(manifest['failed'])}" if manifest["failed"] else ""))
    return manifest

