"""Executed notebooks to static pages with nbconvert (the ``lab`` template, extended in
``itespy/book/templates/chapter``), for a site that opens from ``file://`` with no server and no network.

What nbconvert alone would not do offline, and what this module adds:

* plotly outputs (``application/vnd.plotly.v1+json``) become plotly's own ``<div>`` + ``Plotly.newPlot``
  (:func:`plotly.io.to_html` without the library); every page loads the site's one ``static/plotly.min.js``;
* widget views (``application/vnd.jupyter.widget-view+json``) need a kernel: they become a note with a link
  to the notebook, followed by the plotly figures the widget showed when the notebook ran (read from the
  widget state papermill saved), still rotatable; the 10 MB widget state itself is dropped;
* equations are converted to MathML at build time (``latex2mathml``), which browsers draw natively, instead
  of MathJax from a CDN; require.js, the widget manager and mermaid (all CDN scripts) are left out.
"""
from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import jinja2
import nbformat
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbconvert.preprocessors import Preprocessor

TEMPLATES = Path(__file__).resolve().parent / "templates"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
PLOTLY_JS = "static/plotly.min.js"
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


# latex2mathml keeps a delimiter written as a command after a size command as raw text (``\big\lVert`` and
# ``\big\|`` give the characters "\lVert", "\|"); the same delimiters as Unicode characters convert.
_SIZED_DELIMITER = re.compile(r"(\\(?:big|Big|bigg|Bigg)[lrm]?)\s*\\"
                              r"((?:lVert|rVert|Vert|lvert|rvert|vert|langle|rangle)(?![A-Za-z])|[|{}])")
_DELIMITER_CHARACTER = {"lVert": "‖", "rVert": "‖", "Vert": "‖", "|": "‖", "lvert": "|",
                        "rvert": "|", "vert": "|", "langle": "⟨", "rangle": "⟩", "{": "{", "}": "}"}
_TEX_COMMAND = re.compile(r"\\(?:[A-Za-z]+|[|{}])")


def _sized_delimiters_as_characters(tex: str) -> str:
    return _SIZED_DELIMITER.sub(lambda m: m.group(1) + _DELIMITER_CHARACTER[m.group(2)], tex)


def unconverted_tex(markup: str) -> list:
    """TeX commands left as text in converted MathML/HTML (tags removed): what a reader would see raw."""
    return _TEX_COMMAND.findall(re.sub(r"<[^>]+>", " ", markup))


def mathml(tex: str, display: str) -> str:
    """LaTeX to MathML (``display``: "block" or "inline"); on a conversion error, the TeX source as code."""
    from latex2mathml.converter import convert
    try:
        return convert(_sized_delimiters_as_characters(tex.strip()), display=display)
    except Exception:  # noqa: BLE001 -- an unknown macro must not stop the book; show the source instead
        return f'<code class="book-tex">{html.escape(tex)}</code>'


class MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer with the equations typeset at build time (no MathJax, no network)."""

    def block_math(self, body: str) -> str:
        return mathml(body, "block")

    def inline_math(self, body: str) -> str:
        return mathml(body, "inline")

    def latex_environment(self, name: str, body: str) -> str:
        return mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", "block")


class BookExporter(HTMLExporter):
    """HTMLExporter with the book's template and MathML equations."""

    @jinja2.pass_context
    def markdown2html(self, context, source):
        cell = context.get("cell", {})
        path = context.get("resources", {}).get("metadata", {}).get("path", "")
        renderer = MathMLRenderer(escape=False, attachments=cell.get("attachments", {}), embed_images=self.embed_images,
                                  path=path, anchor_link_text=self.anchor_link_text,
                                  exclude_anchor_links=self.exclude_anchor_links, **self.lexer_options)
        return MarkdownWithMath(renderer=renderer).render(source)


def figure_html(spec: dict, div_id: str) -> str:
    """A plotly figure (its JSON: data, layout) as a div drawn by the page's plotly.js; a figure with a fixed
    width or height keeps it (a widget's panels), the others follow the page's width."""
    import plotly.io as pio
    layout = spec.get("layout", {})
    fig = {"data": spec.get("data", []), "layout": layout}
    size = {k: f"{layout[k]}px" if isinstance(layout.get(k), (int, float)) else default
            for k, default in (("width", "100%"), ("height", "450px"))}
    return pio.to_html(fig, config={**PLOTLY_CONFIG, **spec.get("config", {})}, include_plotlyjs=False,
                       full_html=False, validate=False, div_id=div_id, default_width=size["width"],
                       default_height=size["height"])


def _model_ids(value) -> list:
    values = value if isinstance(value, list) else [value]
    return [v[len("IPY_MODEL_"):] for v in values if isinstance(v, str) and v.startswith("IPY_MODEL_")]


def widget_parts(state: dict, model_id: str) -> tuple:
    """(plotly figure specs, control descriptions) found under a widget, in display order."""
    figures, controls, seen = [], [], set()

    def visit(mid):
        model = state.get(mid)
        if mid in seen or model is None:
            return
        seen.add(mid)
        s = model.get("state", {})
        if "figure_data" in s and "figure_layout" in s:  # itespy.viz.widgets.PlotlyView
            figures.append({"data": s["figure_data"], "layout": s["figure_layout"]})
        elif s.get("description"):
            controls.append(s["description"])
        for child in _model_ids(s.get("children", [])):
            visit(child)

    visit(model_id)
    return figures, controls


SOLUTION_TAG = "solution"
SOLUTION_SUMMARY = "Solution (click to show)"


def fold_solutions(cells: list) -> list:
    """Each code cell tagged ``solution`` becomes a folded ``<details>`` block with its source (closed until
    the reader opens it), followed by the cell's outputs alone: the page gives no answer away at a glance."""
    out = []
    for cell in cells:
        if cell.cell_type == "code" and SOLUTION_TAG in cell.metadata.get("tags", []):
            code = html.escape(cell.source)
            out.append(nbformat.v4.new_markdown_cell(
                f'<details class="book-solution"><summary>{SOLUTION_SUMMARY}</summary>\n\n'
                f'<pre><code class="language-python">{code}</code></pre>\n\n</details>'))
            if cell.get("outputs"):
                shown = nbformat.from_dict(json.loads(json.dumps(cell)))
                shown.source = ""
                shown.metadata["tags"] = ["solution-output"]  # book.css hides its (empty) input area
                out.append(shown)
            continue
        out.append(cell)
    return out


class BookPreprocessor(Preprocessor):
    """Plotly JSON → plotly divs; widget views → note + link + their saved figures; widget state dropped.
    Reads ``resources['book']`` (``notebook_href``, ``notebook_name``, ``stem``) and sets ``resources['book']['plotly']``
    (whether the page needs plotly.js) and ``['figures']`` / ``['widgets']`` (counts)."""

    def preprocess(self, nb, resources):
        book = resources.setdefault("book", {})
        self._state = nb.metadata.get("widgets", {}).get(WIDGET_STATE_MIME, {}).get("state", {})
        self._n = 0
        book["widgets"] = 0
        nb.cells = fold_solutions(nb.cells)
        book["solutions"] = sum(1 for c in nb.cells if c.cell_type == "markdown" and SOLUTION_SUMMARY in c.source)
        nb, resources = super().preprocess(nb, resources)
        nb.metadata.pop("widgets", None)
        book["figures"] = self._n
        book["plotly"] = self._n > 0
        return nb, resources

    def _figure(self, spec, book) -> str:
        self._n += 1
        return figure_html(spec, f"{book.get('stem', 'chapter')}-plotly-{self._n}")

    def preprocess_cell(self, cell, resources, index):
        book = resources["book"]
        for output in cell.get("outputs", []):
            data = output.get("data") or {}
            if PLOTLY_MIME in data:
                output["data"] = {"text/html": self._figure(data[PLOTLY_MIME], book)}
            elif WIDGET_VIEW_MIME in data:
                book["widgets"] += 1
                figures, controls = widget_parts(self._state, data[WIDGET_VIEW_MIME].get("model_id", ""))
                link = (f'<a href="{html.escape(book.get("notebook_href", ""))}">'
                        f'{html.escape(book.get("notebook_name", "the notebook"))}</a>')
                what = f" (controls: {html.escape(', '.join(controls))})" if controls else ""
                shown = (" Below are its figures as the notebook left them; drag a 3D view to turn it."
                         if figures else "")
                note = (f'<p class="book-widget-note"><strong>Interactive widget</strong>{what}. Its controls need '
                        f"a running Python kernel, which a static page does not have.{shown} To use the controls, "
                        f"open {link} in JupyterLab and run it.</p>")
                body = "".join(f'<div class="book-widget-figure">{self._figure(f, book)}</div>' for f in figures)
                output["data"] = {"text/html": f'<div class="book-widget">{note}'
                                               f'<div class="book-widget-figures">{body}</div></div>'}
            elif "<iframe" in str(data.get("text/html", "")):
                output["data"] = {**data, "text/html": self._local_iframes("".join(data["text/html"]), book)}
            if output.get("metadata"):
                output["metadata"] = {k: v for k, v in output["metadata"].items() if k in ("image/png", "image/jpeg")}
        return cell, resources

    def _local_iframes(self, text: str, book: dict) -> str:
        """An iframe showing a file the notebook wrote (e.g. chapter 09's viewer) gets a copy of that file in
        the site, ``files/<chapter>/``, drawing with the site's plotly.js instead of its own inline copy."""
        def copy(match):
            src = Path(book.get("cwd", ".")) / html.unescape(match.group(2))
            if match.group(2).startswith(("http:", "https:", "data:")) or not src.is_file():
                return match.group(0)
            target = Path(book["site"]) / "files" / book["stem"] / src.name
            target.parent.mkdir(parents=True, exist_ok=True)
            page = src.read_text(errors="replace")
            shared = f'<script src="../../{PLOTLY_JS}" charset="utf-8"></script>'
            target.write_text(page.replace(f"<script>{_inline_plotly_js()}</script>", shared))
            book.setdefault("files", []).append(f"files/{book['stem']}/{src.name}")
            return f'{match.group(1)}"files/{book["stem"]}/{html.escape(src.name)}"'
        return re.sub(r'(<iframe\b[^>]*?\bsrc=)"([^"]+)"', copy, text)


def _inline_plotly_js() -> str:
    from plotly.offline import get_plotlyjs
    return get_plotlyjs()


def make_exporter() -> BookExporter:
    exporter = BookExporter(template_name="chapter", extra_template_basedirs=[str(TEMPLATES)], embed_images=True)
    exporter.register_preprocessor(BookPreprocessor(), enabled=True)
    return exporter


def chapter_title(nb) -> str:
    """The first markdown heading of the notebook (without the #s), else its file name."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return nb.metadata.get("papermill", {}).get("input_path", "chapter")


def chapter_summary(nb, limit: int = 320) -> str:
    """The first paragraph after the title as HTML (whole sentences up to about ``limit`` characters), for the
    index."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        paragraphs = [p.strip() for p in cell.source.split("\n\n") if p.strip() and not p.lstrip().startswith("#")]
        if paragraphs:
            sentences, text = re.split(r"(?<=[.!?])\s+", " ".join(paragraphs[0].split())), ""
            for sentence in sentences:
                if text and len(text) + len(sentence) > limit:
                    text += " …"
                    break
                text = f"{text} {sentence}".strip()
            text = text[:-1] + " …" if text.endswith((",", ":", ";")) else text
            return MarkdownWithMath(renderer=MathMLRenderer(escape=False)).render(text)
    return ""


def site_notebook(nb) -> nbformat.NotebookNode:
    """The executed notebook as the site offers it for download: outputs kept, widget state dropped."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.metadata.pop("widgets", None)
    return nb


def render_chapter(exporter: BookExporter, nb, book: dict) -> tuple:
    """(page HTML, book resources after rendering) of one executed notebook; ``book`` goes to the template."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.metadata["title"] = f"{book['title']} · itespy"
    body, resources = exporter.from_notebook_node(nb, resources={"book": dict(book)})
    return body, resources["book"]


def write_static(exporter: BookExporter, site: Path) -> dict:
    """The files every page shares: plotly.js (one copy), JupyterLab's stylesheet, the book's stylesheet."""
    import plotly
    static = site / "static"
    static.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", static / "plotly.min.js")
    env = exporter.environment
    lab_css = "\n".join(env.loader.get_source(env, name)[0] for name in ("static/index.css", "static/theme-light.css"))
    (static / "jupyterlab.css").write_text(lab_css)
    shutil.copyfile(TEMPLATES / "book.css", static / "book.css")
    return {"plotly": PLOTLY_JS, "css": ["static/jupyterlab.css", "static/book.css"]}


def render_index(context: dict) -> str:
    """The index page (``templates/index.html.j2``)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    return env.get_template("index.html.j2").render(**context)


def render_markdown_page(source: Path, title: str) -> str:
    """A page of the book from a Markdown file of the repository (the glossary): the same style, a link back
    to the contents, no scripts."""
    import mistune
    body = mistune.create_markdown(plugins=["table"])(Path(source).read_text())
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<link rel=\"stylesheet\" href=\"static/jupyterlab.css\">\n"
            "<link rel=\"stylesheet\" href=\"static/book.css\">\n</head>\n"
            "<body class=\"jp-Notebook book-index\" data-jp-theme-light=\"true\" data-jp-theme-name=\"JupyterLab Light\">\n"
            "<main class=\"jp-RenderedHTMLCommon\">\n<p><a href=\"index.html\">← contents</a></p>\n"
            f"{body}</main>\n</body>\n</html>\n")
