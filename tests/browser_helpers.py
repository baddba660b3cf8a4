"""Helpers for tests/test_browser.py: a throw-away JupyterLab server, Chromium via Playwright, and the
JavaScript that reads a running notebook (kernel state, cell errors, plotly figures) from the page.

Everything lives under one temporary directory: the Jupyter config/data/runtime dirs, the JupyterLab user
settings and workspaces, a ``python3`` kernelspec that runs *this* interpreter with the repository on
``PYTHONPATH``, and copies of the notebooks (so a run never rewrites the repository's notebooks/ or
figures/). The server runs in its own process group and is killed by that group's id.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Debian's chromium, no sandbox (root in a container), no network chatter, no GPU. Playwright adds --headless.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]


def chromium_executable() -> str | None:
    """The system chromium (no Playwright browser download: none is reachable from CI or dev machines)."""
    return shutil.which("chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def inject_parameters(notebook: Path, overrides: dict) -> dict:
    """papermill-style: add a cell after the one tagged ``parameters`` that sets those ``overrides`` whose
    names the parameters cell defines (others are ignored). Returns what was injected."""
    nb = json.loads(notebook.read_text())
    for i, cell in enumerate(nb["cells"]):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"])
            names = {line.split("=")[0].strip() for line in source.splitlines() if "=" in line}
            injected = {k: v for k, v in overrides.items() if k in names}
            if injected:
                code = "# Parameters injected by tests/test_browser.py (keeps the browser test short)\n"
                code += "\n".join(f"{k} = {v!r}" for k, v in injected.items())
                nb["cells"].insert(i + 1, {"cell_type": "code", "execution_count": None, "id": "browser-test-params",
                                           "metadata": {"tags": ["injected-parameters"]}, "outputs": [],
                                           "source": code})
                notebook.write_text(json.dumps(nb, indent=1))
            return injected
    return {}


class LabServer:
    """JupyterLab on 127.0.0.1:<free port>, no token, no password, ``window.jupyterapp`` exposed, serving
    ``root`` (a temporary directory). ``stop()`` kills the server's process group (kernels included)."""

    def __init__(self, root: Path, home: Path):
        self.root, self.home = Path(root), Path(home)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = self.home / "jupyterlab.log"

    def environment(self) -> dict:
        dirs = {name: self.home / name for name in ("config", "data", "runtime", "settings", "workspaces", "ipython")}
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        # The kernel JupyterLab starts for "python3": this interpreter, importing the itespy under test.
        spec = dirs["data"] / "kernels" / "python3"
        spec.mkdir(parents=True, exist_ok=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (ipykernel)", "language": "python",
            "env": {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                    "MPLBACKEND": "module://matplotlib_inline.backend_inline"},
            "metadata": {"debugger": False}}))
        # No "news" / update-check notification popping up over the notebook.
        notification = dirs["settings"] / "@jupyterlab" / "apputils-extension"
        notification.mkdir(parents=True, exist_ok=True)
        (notification / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        # Render every cell (no virtual scrolling), so widgets far down the notebook are laid out and drawn.
        tracker = dirs["settings"] / "@jupyterlab" / "notebook-extension"
        tracker.mkdir(parents=True, exist_ok=True)
        (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
        # ...and no news feed fetched at all (news_url=None cannot be spelled on the command line).
        (dirs["config"] / "jupyter_server_config.json").write_text(json.dumps({"LabApp": {"news_url": None}}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JPY_"))}
        env.update(JUPYTER_CONFIG_DIR=str(dirs["config"]), JUPYTER_DATA_DIR=str(dirs["data"]),
                   JUPYTER_RUNTIME_DIR=str(dirs["runtime"]), JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
                   JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]), IPYTHONDIR=str(dirs["ipython"]),
                   JUPYTER_PLATFORM_DIRS="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
        env.pop("MPLBACKEND", None)
        return env

    def start(self, timeout: float = 90.0) -> "LabServer":
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
               "--port-retries=0", "--allow-root", "--ServerApp.token=", "--ServerApp.password=",
               f"--ServerApp.root_dir={self.root}", "--LabApp.expose_app_in_browser=True",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--MappingKernelManager.cull_idle_timeout=0"]
        env = self.environment()
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer on {self.url} within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM the server's process group (server and kernels), then SIGKILL what is left."""
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the server leads its own group
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # the leader is gone; make sure no kernel of the group outlives it
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break
        self.proc = None


# ----------------------------------------------------------------------------------------------------
# JavaScript run in the page (window.jupyterapp is there thanks to --LabApp.expose_app_in_browser)
# ----------------------------------------------------------------------------------------------------
JS_NOTEBOOK_STATE = """(path) => {
  const app = window.jupyterapp;
  if (!app) return {ready: false, why: 'window.jupyterapp missing'};
  const panel = app.shell.currentWidget;
  if (!panel || !panel.context || panel.context.path !== path) return {ready: false, why: 'notebook not current'};
  const session = panel.sessionContext;
  const kernel = session.session && session.session.kernel;
  const cells = [];
  const model = panel.content.model;
  for (let i = 0; i < model.cells.length; i++) {
    const c = model.cells.get(i);
    if (c.type !== 'code') continue;
    const outputs = [];
    for (let k = 0; k < c.outputs.length; k++) outputs.push(c.outputs.get(k).toJSON());
    cells.push({index: i, count: c.executionCount, executing: c.executionState === 'running',
                source: c.sharedModel.getSource().slice(0, 80), outputs});
  }
  return {ready: true, kernel: kernel ? kernel.status : null, kernelName: kernel ? kernel.name : null,
          busy: session.isReady === false, cells,
          pending: panel.content.widgets.filter(w => w.promptNode && w.promptNode.textContent.includes('*')).length};
}"""

# Every plotly graph under `node` (a cell's DOM node): 3D or not, the camera, and each trace's coordinates.
JS_PLOTS = """(node) => {
  const toArr = (a) => a == null ? null : Array.from(a, v => v == null ? null : Number(v));
  return Array.from(node.querySelectorAll('.js-plotly-plot')).map(gd => ({
    is3d: !!(gd._fullLayout && gd._fullLayout.scene),
    camera: gd._fullLayout && gd._fullLayout.scene ? JSON.parse(JSON.stringify(gd._fullLayout.scene.camera)) : null,
    traces: (gd.data || []).map(t => ({name: t.name, visible: t.visible, x: toArr(t.x), y: toArr(t.y),
                                       z: toArr(t.z)})),
  }));
}"""

# How many traces each plotly graph in the open notebook draws (0: a blank widget).
JS_TRACE_COUNTS = """() => Array.from(document.querySelectorAll('.jp-Notebook .js-plotly-plot'))
  .map(gd => (gd.data || []).length)"""

# Widget views that ipywidgets replaced by its error widget, and outputs saying a widget failed.
JS_WIDGET_ERRORS = """() => {
  const out = [];
  document.querySelectorAll('.jp-Notebook .jupyter-widgets-error-widget')
    .forEach(e => out.push(e.textContent.slice(0, 200)));
  document.querySelectorAll('.jp-Notebook .jp-OutputArea-output').forEach(e => {
    const text = e.textContent || '';
    if (text.includes('Error displaying widget') || text.includes('Failed to load model class'))
      out.push(text.slice(0, 200));
  });
  return out;
}"""
