"""The notebooks as a person uses them: a real JupyterLab server, a real Chromium, clicks and drags.

For each notebook (01, and 00_tour when it exists): open it from JupyterLab's file browser, run every cell with
the ``notebook:run-all-cells`` command, wait for the kernel to go idle, then check that no cell shows an
error, no widget failed to render, every plotly graph on the page draws something, and the browser console
has no uncaught error. Then drag the yaw slider of the 3D skeleton viewer with the mouse and check, from the
plotly graphs' data read out of the page, that the 3D view turned by exactly the new slider angle and that the
linked 2D view changed and is still the perspective projection of the 3D pose; screenshots restricted to each
plot must change too. Screenshots land in test-artifacts/browser/ (gitignored); figures/browser/widget.png
(for the README) is written when missing, or rewritten with ITESPY_UPDATE_BROWSER_FIGURE=1.

Needs Debian's ``chromium`` (skipped with a reason when it is absent) and the Python ``playwright`` package;
no browser download. Everything runs on copies under a temporary directory (docs/browser_test.md).
"""
from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from browser_helpers import (CHROMIUM_ARGS, JS_NOTEBOOK_STATE, JS_PLOTS, JS_TRACE_COUNTS, JS_WIDGET_ERRORS, REPO,
                             LabServer, chromium_executable, inject_parameters)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

ARTIFACTS = REPO / "test-artifacts" / "browser"
README_FIGURE = REPO / "figures" / "browser" / "widget.png"
VIEWPORT = {"width": 1400, "height": 1000}
# Smaller training for the tour (it trains a teacher and a student before showing the viewer): the browser
# test is about the widgets; papermill/nbval run the notebook with its own parameters.
TOUR_OVERRIDES = {"max_train": 128, "teacher_epochs": 1, "student_epochs": 1}
RUN_TIMEOUT_S = {"01_projection_ambiguity": 150, "00_tour": 240}
DRAG_PX = 35  # to the right on the yaw slider: about +100 degrees on the 320 px, -180..180 slider


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(JupyterLab server, Chromium browser, served root) shared by the notebooks of this module."""
    chromium = chromium_executable()
    if chromium is None:
        pytest.skip("chromium not found on PATH (Debian: apt-get install -y chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    root = tmp_path_factory.mktemp("lab-root")
    (root / "notebooks").mkdir()
    (root / "figures").mkdir()  # the notebooks save to ../figures/<chapter>: keep that inside the copy
    server = LabServer(root, tmp_path_factory.mktemp("lab-home"))
    try:
        server.start()
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            try:
                yield server, browser, root
            finally:
                browser.close()
    finally:
        server.stop()


def wait_for(check, timeout: float, what: str, interval: float = 0.5):
    """Poll ``check()`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def trace(plot: dict, name: str) -> dict:
    matches = [t for t in plot["traces"] if t["name"] == name]
    assert len(matches) == 1, f"expected one trace named {name!r}, the plot has {[t['name'] for t in plot['traces']]}"
    return matches[0]


def joints(plot: dict, name: str) -> np.ndarray:
    """(17, 3) or (17, 2) coordinates of the joint-marker trace ``name`` of a graph read from the page."""
    tr = trace(plot, name)
    axes = {a: tr[a] for a in ("xyz" if plot["is3d"] else "xy")}
    sizes = {a: None if v is None else len(v) for a, v in axes.items()}
    graph = "3D" if plot["is3d"] else "2D"
    assert set(sizes.values()) == {17}, f"the {graph} graph's {name!r} trace does not hold 17 joints: {sizes}"
    return np.array(list(axes.values()), dtype=np.float64).T


def changed_fraction(png_a: bytes, png_b: bytes) -> float:
    """Share of pixels that differ between two screenshots of the same element."""
    from PIL import Image, ImageChops
    a, b = (Image.open(io.BytesIO(p)).convert("RGB") for p in (png_a, png_b))
    if a.size != b.size:
        return 1.0
    diff = np.asarray(ImageChops.difference(a, b)).max(axis=-1)
    return float((diff > 16).mean())


class NotebookPage:
    """One Chromium page on the lab, recording console errors and uncaught exceptions."""

    def __init__(self, browser, server: LabServer):
        self.page = browser.new_page(viewport=VIEWPORT)
        self.server = server
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught exception: {exc}"))
        self.page.on("console", lambda msg: self.errors.append(f"console.error: {msg.text}")
                     if msg.type == "error" else None)

    def open_from_file_browser(self, path: str) -> None:
        page = self.page
        page.goto(f"{self.server.url}/lab?reset")
        page.wait_for_function("() => window.jupyterapp !== undefined", timeout=90_000)
        for part in path.split("/"):
            item = page.locator(".jp-DirListing-item", has_text=part).first
            item.wait_for(timeout=60_000)
            item.dblclick()
        wait_for(lambda: self.state(path).get("kernel") == "idle", 90,
                 f"{path} to open with an idle python3 kernel ({self.state(path)})")

    def state(self, path: str) -> dict:
        return self.page.evaluate(JS_NOTEBOOK_STATE, path)

    def run_all(self, path: str, timeout: float) -> dict:
        self.page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

        def finished():
            st = self.state(path)
            errored = any(o.get("output_type") == "error" for c in st["cells"] for o in c["outputs"])
            done = all(c["count"] for c in st["cells"]) or errored  # run-all stops at the first error
            return st if (st["kernel"] == "idle" and not st["pending"] and done) else None

        time.sleep(1.0)  # let the kernel pick up the first cell before polling for idle
        return wait_for(finished, timeout, f"all cells of {path} to run")

    def screenshot(self, locator, name: str) -> bytes:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        return locator.screenshot(path=str(ARTIFACTS / name), animations="disabled")


def slider(cell, page, label: str):
    """(readout value, handle locator) of the ipywidgets slider labelled ``label`` inside ``cell``."""
    row = cell.locator(".widget-hslider").filter(has=page.locator(".widget-label", has_text=label)).first
    return float(row.locator(".widget-readout").inner_text()), row.locator(".noUi-handle").first


def drag(page, handle, dx: float) -> None:
    """A real mouse drag of the slider handle by ``dx`` pixels."""
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y, steps=12)
    page.mouse.up()


@pytest.mark.parametrize("name", ["01_projection_ambiguity", "00_tour"])
def test_notebook_widgets_in_a_real_browser(lab, name):
    from itespy import viz

    server, browser, root = lab
    source = REPO / "notebooks" / f"{name}.ipynb"
    if not source.exists():
        pytest.skip(f"notebooks/{name}.ipynb does not exist (yet)")
    shutil.copy(source, root / "notebooks" / source.name)
    if name == "00_tour":
        inject_parameters(root / "notebooks" / source.name, TOUR_OVERRIDES)
    path = f"notebooks/{source.name}"

    nb = NotebookPage(browser, server)
    page = nb.page
    try:
        nb.open_from_file_browser(path)
        assert nb.state(path)["kernelName"] == "python3"
        state = nb.run_all(path, RUN_TIMEOUT_S[name])

        # 1. No cell error, no broken widget, no blank plot, a quiet console.
        errors = [f"cell {c['index']} ({c['source'].splitlines()[0] if c['source'] else ''}...): "
                  f"{o.get('ename')}: {o.get('evalue')}"
                  for c in state["cells"] for o in c["outputs"] if o.get("output_type") == "error"]
        assert not errors, "cells failed in JupyterLab:\n" + "\n".join(errors)
        time.sleep(1.0)  # widget views render asynchronously after the outputs arrive
        counts = wait_for(lambda: (lambda n: n if n and all(n) else None)(page.evaluate(JS_TRACE_COUNTS)), 30,
                          f"every plotly graph to draw traces (traces per graph: {page.evaluate(JS_TRACE_COUNTS)})")
        assert not page.evaluate(JS_WIDGET_ERRORS), f"widgets failed: {page.evaluate(JS_WIDGET_ERRORS)}"
        assert not nb.errors, "browser console errors after running the notebook:\n" + "\n".join(nb.errors)

        # 2. The 3D skeleton viewer: the cell whose output has the "distance t" slider.
        cell = page.locator(".jp-Notebook .jp-Cell").filter(
            has=page.locator(".widget-label", has_text="distance t")).first
        cell.scroll_into_view_if_needed()
        output = cell.locator(".jp-OutputArea-output").filter(has=page.locator(".js-plotly-plot")).first
        plots3d = output.locator(".js-plotly-plot")
        assert plots3d.count() == 2, f"expected a 3D and a 2D plotly graph in the viewer, found {plots3d.count()}"

        def read():
            plots = output.evaluate(JS_PLOTS)
            p3 = [p for p in plots if p["is3d"]]
            p2 = [p for p in plots if not p["is3d"]]
            assert len(p3) == 1 and len(p2) == 1, f"viewer graphs: {[(p['is3d'], len(p['traces'])) for p in plots]}"
            return p3[0], p2[0]

        yaw0, handle = slider(cell, page, "yaw")
        pitch, _ = slider(cell, page, "pitch")
        roll, _ = slider(cell, page, "roll")
        t, _ = slider(cell, page, "distance t")
        p3, p2 = read()
        before = {"pose3d": joints(p3, "pose"), "ghost3d": joints(p3, "unflipped"), "pose2d": joints(p2, "pose"),
                  "camera": p3["camera"]}
        shots_before = [nb.screenshot(plots3d.nth(i), f"{name}-plot{i}-before.png") for i in range(2)]
        nb.screenshot(output, f"{name}-before.png")

        # 3. Drag the yaw slider with the mouse.
        drag(page, handle, DRAG_PX)
        yaw1 = wait_for(lambda: (lambda v: v if v != yaw0 else None)(slider(cell, page, "yaw")[0]), 10,
                        f"the yaw readout to move from {yaw0} after the drag")
        expected_ghost = viz.rotate_pose(before["ghost3d"], viz.euler_rotation(yaw1, pitch, roll)
                                         @ viz.euler_rotation(yaw0, pitch, roll).T)
        scale = np.abs(before["ghost3d"]).max()

        def settled():
            st = nb.state(path)
            p3n, p2n = read()
            ok = st["kernel"] == "idle" and np.allclose(joints(p3n, "unflipped"), expected_ghost, atol=1e-6 * scale)
            return (p3n, p2n) if ok else None

        deadline = time.monotonic() + 20
        settled_plots = None
        while settled_plots is None and time.monotonic() < deadline:
            settled_plots = settled()
            time.sleep(0.3)
        p3, p2 = read()
        after = {"pose3d": joints(p3, "pose"), "ghost3d": joints(p3, "unflipped"), "pose2d": joints(p2, "pose")}
        moved3d = float(np.abs(after["pose3d"] - before["pose3d"]).max())
        assert moved3d > 1e-3 * scale, (
            f"the 3D view did not change after dragging yaw {yaw0} -> {yaw1}: the joints in the page's plotly "
            f"data moved by at most {moved3d:.3g} (pose size {scale:.3g})")
        assert settled_plots is not None, (
            f"the 3D view is not the pose turned by the slider's new yaw {yaw1} (was {yaw0}): max deviation "
            f"{np.abs(after['ghost3d'] - expected_ghost).max():.3g} (scale {scale:.3g})")
        moved2d = float(np.abs(after["pose2d"] - before["pose2d"]).max())
        assert moved2d > 1e-4, (
            f"the linked 2D view did not change after dragging yaw {yaw0} -> {yaw1}: its joints moved by at most "
            f"{moved2d:.3g}")
        projected = after["pose3d"][:, :2] / np.maximum(1.0, t + after["pose3d"][:, 2:3])
        assert np.allclose(after["pose2d"], projected, atol=1e-6), (
            f"the 2D view is not the perspective projection (t = {t}) of the 3D view: max deviation "
            f"{np.abs(after['pose2d'] - projected).max():.3g}")
        assert p3["camera"] == before["camera"], "the slider moved the 3D camera instead of the pose"

        page.mouse.move(0, 0)  # no hover labels in the screenshots
        time.sleep(0.5)
        shots_after = [nb.screenshot(plots3d.nth(i), f"{name}-plot{i}-after.png") for i in range(2)]
        widget_png = nb.screenshot(output, f"{name}-after.png")
        for i, label in enumerate(("3D", "2D")):
            frac = changed_fraction(shots_before[i], shots_after[i])
            assert frac > 0.002, f"the {label} plot looks the same on screen after the drag ({frac:.2%} pixels changed)"
        assert not nb.errors, "browser console errors while using the widget:\n" + "\n".join(nb.errors)

        if name == "01_projection_ambiguity" and (not README_FIGURE.exists()
                                                  or os.environ.get("ITESPY_UPDATE_BROWSER_FIGURE") == "1"):
            README_FIGURE.parent.mkdir(parents=True, exist_ok=True)
            README_FIGURE.write_bytes(widget_png)
    except BaseException:
        try:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{name}-failure.png"))
            (ARTIFACTS / f"{name}-jupyterlab.log").write_text(server.log_tail(200))
        except Exception:  # noqa: BLE001 - the original failure matters more
            pass
        raise
    finally:
        page.close()
