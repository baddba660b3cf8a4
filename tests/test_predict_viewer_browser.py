"""The self-contained HTML viewer of `itespy predict` opens in a real headless Chromium (offline)."""
from pathlib import Path

import numpy as np
import pytest

from itespy.predict import Prediction
from itespy.viz import example_pose

from browser_helpers import CHROMIUM_ARGS, REPO, chromium_executable

pytestmark = pytest.mark.browser
SCREENSHOT = REPO / "figures" / "09_your_keypoints" / "viewer_browser.png"


def _prediction(frames=5):
    base = example_pose("model")
    yaw = np.linspace(0, np.pi / 2, frames)
    rot = np.stack([np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]) for a in yaw])
    poses = np.einsum("fij,nj->fni", rot, base).astype(np.float32)
    pixels = (poses[..., :2] / (5 + poses[..., 2:]) * 1145 + 500).astype(np.float32)
    return Prediction(teacher=poses, student=poses * 1.01, input_2d=poses[..., :2] / 5, pixels=pixels,
                      confidence=np.ones((frames, 17), np.float32), filled=np.zeros((frames, 17), bool),
                      frame_index=np.arange(frames), frame_id=np.arange(frames), report={"skipped": []})


def test_viewer_renders_offline_with_a_frame_slider(tmp_path):
    exe = chromium_executable()
    if exe is None:
        pytest.skip("chromium not found on PATH (Debian: apt-get install -y chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    html = tmp_path / "viewer.html"
    html.write_text(_prediction().viewer_html("test viewer"))
    errors, requests = [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 640})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda req: requests.append(req.url))
            page.goto(html.as_uri())
            page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
            state = page.evaluate("""() => { const g = document.querySelector('.js-plotly-plot');
                return {traces: g.data.length, frames: (g._transitionData && g._transitionData._frames || []).length,
                        sliders: (g.layout.sliders || []).length,
                        steps: g.layout.sliders && g.layout.sliders[0] ? g.layout.sliders[0].steps.length : 0}; }""")
            if not SCREENSHOT.exists():
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOT))
            page.screenshot(path=str(tmp_path / "viewer.png"))
        finally:
            browser.close()
    assert not errors, f"JavaScript errors in the viewer: {errors}"
    remote = [u for u in requests if u.startswith(("http://", "https://"))]
    assert not remote, f"the viewer is not self-contained; it requested {remote}"
    assert state["traces"] >= 2, state  # teacher and student skeletons at least
    assert state["sliders"] == 1 and state["steps"] == 5, state  # one frame slider, one step per frame
    assert Path(tmp_path / "viewer.png").stat().st_size > 10_000
