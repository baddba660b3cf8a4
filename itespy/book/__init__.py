"""The course as a book: ``python -m itespy book --profile smoke|tutorial --out DIR``.

Executes the ten notebooks (:mod:`~itespy.book.chapters`: papermill, as ``reproduce`` does, reusing trained
runs and cached table rows) and renders a static site (:mod:`~itespy.book.render`: nbconvert's lab template)::

    DIR/index.html                the chapters in order, with what made their numbers
    DIR/00_tour.html ...          one page per chapter: prose, equations (MathML), matplotlib figures,
                                  plotly figures (rotatable), widgets as a note + their saved figures
    DIR/notebooks/*.ipynb         the executed notebooks (outputs kept) the pages link to
    DIR/static/plotly.min.js      the one copy of plotly.js every page loads; JupyterLab's and the book's CSS
    DIR/files/<chapter>/...       files a chapter shows in an iframe (chapter 09's 3D viewer)
    DIR/book.json                 the manifest: profile, data, per-chapter status, seconds, parameters

The site opens from ``file://``: no server, no network. docs/book.md says why nbconvert."""
from .build import BOOK_TITLE, build_book, render_site
from .chapters import chapter_parameters, chapter_stems, execute_chapters
from .cli import add_arguments, run_from_args

__all__ = ["BOOK_TITLE", "build_book", "render_site", "execute_chapters", "chapter_parameters", "chapter_stems",
           "add_arguments", "run_from_args"]
