"""JupyterLab as a researcher sees it: start `make lab`'s server (over a copy of notebooks/, a
free port, a token), open notebooks/explore.ipynb in headless Chromium through Selenium and Debian's
chromedriver, run its code cells and read what each shows on the page.

    python benchmarks/lab_browser.py [--cells N] [--timeout 900] [--screenshot lab.png]

Prints each step, the kernel's state as the page shows it, and each cell's output; exits 1 if the
kernel never connects, a cell shows an error, a cell's outputs are hidden (JupyterLab shows 50 and
folds the rest behind "Show more outputs"; a collapsed output area) or a figure cell (one that
calls ``figures.`` or ``plt.``) shows no image; 2 where Chromium or chromedriver is missing.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000")


def browsers() -> tuple[str | None, str | None]:
    return (shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_command(port: int, token: str, notebooks: Path = NOTEBOOKS) -> list[str]:
    """What `make lab` runs, on a given port and token, without opening a browser of its own."""
    command = [sys.executable, "-m", "jupyter", "lab", f"--notebook-dir={notebooks}", "--ip=127.0.0.1",
               f"--port={port}", "--no-browser", f"--IdentityProvider.token={token}"]
    return command + (["--allow-root"] if os.getuid() == 0 else [])


def check_command(port: int, token: str, notebooks: Path) -> list[str]:
    """`make lab`'s command, with the application reachable from the page (window.jupyterapp) to run cells."""
    return lab_command(port, token, notebooks) + ["--LabApp.expose_app_in_browser=True"]


def wait_for_server(url: str, server: subprocess.Popen, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with status {server.returncode} before it answered")
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"jupyter lab did not answer {url} within {timeout:.0f} s")


KERNEL_STATE = """
const el = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Toolbar-kernelStatus')
        || document.querySelector('[data-jp-item-name="kernelStatus"], .jp-StatusBar-TextItem');
const status = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-KernelStatus, .jp-KernelStatus');
return [el ? el.textContent : '', status ? (status.getAttribute('data-status') || status.title || '') : ''];
"""
OUTPUTS = """
const notebook = window.jupyterapp.shell.currentWidget.content;
return notebook.widgets.filter(c => c.model.type === 'code').map(c => {
  const n = c.node, prompt = n.querySelector('.jp-InputPrompt');
  return {prompt: prompt ? prompt.textContent : '', source: c.model.sharedModel.getSource(),
          text: [...n.querySelectorAll('.jp-OutputArea-output')].map(o => o.innerText).join('\\n'),
          error: !!n.querySelector('.jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]'),
          outputs: c.model.outputs.length, trimmed: !!n.querySelector('.jp-TrimmedOutputs'),
          hidden: !!c.outputHidden,
          images: n.querySelectorAll('.jp-OutputArea-output img, .jp-OutputArea-output svg').length};
});
"""
SHOWN_AT_MOST = 50  # JupyterLab's maxNumberOutputs: the outputs past it wait behind "Show more outputs"
FIGURE = re.compile(r"\b(figures|plt)\.")


def problems(cell: dict) -> list[str]:
    """What hides a code cell's result from a reader of the page: an error, outputs folded or
    past what JupyterLab shows, a figure cell without an image."""
    found = []
    if cell["error"]:
        found.append("shows an error")
    if cell["trimmed"] or cell["outputs"] > SHOWN_AT_MOST:
        found.append(f"has {cell['outputs']} outputs: JupyterLab shows {SHOWN_AT_MOST}, the rest behind "
                     "'Show more outputs'")
    if cell["hidden"] and cell["outputs"]:
        found.append("has its outputs collapsed")
    if FIGURE.search(cell["source"]) and not cell["images"]:
        found.append("draws a figure but shows no image")
    return found


RUN_CELLS = """
const app = window.jupyterapp, notebook = app.shell.currentWidget.content;
const code = notebook.widgets.map((c, i) => [c.model.type, i]).filter(c => c[0] === 'code').map(c => c[1])
  .slice(0, arguments[0] || undefined);
for (const i of code) { notebook.activeCellIndex = i; app.commands.execute('notebook:run-cell'); }
return code;
"""
STATUS_BAR = "return [...document.querySelectorAll('.jp-StatusBar-Item')].map(e => e.innerText).join(' | ');"


def run(cells: int, timeout: float, screenshot: str | None, echo=print) -> int:
    chromium, chromedriver = browsers()
    if not chromium or not chromedriver:
        echo("needs Chromium and chromedriver (Debian: apt-get install chromium chromium-driver)")
        return 2
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    began = time.time()
    port, token = free_port(), secrets.token_hex(16)
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "lab.log"
        # a copy of notebooks/: JupyterLab saves what it opens (its kernel's metadata, the outputs)
        notebooks = Path(shutil.copytree(NOTEBOOKS, Path(tmp) / "notebooks"))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        with open(log_path, "w") as log:
            server = subprocess.Popen(check_command(port, token, notebooks), stdout=log, stderr=subprocess.STDOUT,
                                      env=env, cwd=ROOT)
        driver = None
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for_server(f"{base}/api/status?token={token}", server, 120)
            echo(f"server: jupyter lab answers at {base} after {time.time() - began:.0f} s")
            options = webdriver.ChromeOptions()
            options.binary_location = chromium
            for flag in CHROMIUM_FLAGS:
                options.add_argument(flag)
            options.add_argument(f"--user-data-dir={Path(tmp) / 'chromium'}")
            driver = webdriver.Chrome(service=Service(chromedriver), options=options)
            driver.get(f"{base}/lab/tree/explore.ipynb?token={token}")
            wait = WebDriverWait(driver, timeout, poll_frequency=0.5)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell"))
            echo(f"page: explore.ipynb open in Chromium after {time.time() - began:.0f} s")
            try:
                wait.until(lambda d: "Idle" in d.execute_script(STATUS_BAR))
            except TimeoutException:
                echo(f"kernel: never idle; the status bar reads: {driver.execute_script(STATUS_BAR)!r}")
                echo("server log, last lines:\n" + "\n".join(log_path.read_text().splitlines()[-15:]))
                return 1
            echo(f"kernel: {driver.execute_script(STATUS_BAR)!r} after {time.time() - began:.0f} s")
            # run the first code cells as the Run menu does, through the page's own command registry
            ran = driver.execute_script(RUN_CELLS, cells)
            echo(f"cells: running notebook cells {', '.join(str(i + 1) for i in ran)} "
                 f"({f'the first {cells} code cells' if cells else 'every code cell'})")
            # done when the last of them shows an execution count, not [*]
            try:
                wait.until(lambda d: all("*" not in c["prompt"] and c["prompt"].strip() not in ("[ ]:", "")
                                         for c in d.execute_script(OUTPUTS)[:len(ran)]))
                failed = False
            except TimeoutException:
                bar = driver.execute_script(STATUS_BAR)
                echo(f"cells: not done after {timeout:.0f} s; the status bar reads {bar!r}")
                failed = True
            for i, cell in enumerate(driver.execute_script(OUTPUTS)[:len(ran)]):
                shown = cell["text"].strip() or "(no text)"
                found = problems(cell)
                echo(f"cell {ran[i] + 1} {cell['prompt'].strip()} {cell['outputs']} outputs, {cell['images']} "
                     f"images{': ' + '; '.join(found).upper() if found else ''}:\n  "
                     + "\n  ".join(shown.splitlines()[:20]))
                failed |= bool(found)
            if screenshot:
                driver.save_screenshot(screenshot)
                echo(f"screenshot: {screenshot}")
            warnings = [line for line in log_path.read_text().splitlines() if "websocket" in line.lower()]
            if warnings:
                echo("server log, websocket lines:\n" + "\n".join(warnings[-5:]))
            verdict = "FAILED" if failed else "ok"
            echo(f"{verdict}: {len(ran)} code cells ran in the browser in {time.time() - began:.0f} s"
                 + (", each showing its outputs" if not failed else ""))
            return 1 if failed else 0
        finally:
            if driver is not None:
                driver.quit()
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=0, help="how many code cells to run from the top (default: all)")
    p.add_argument("--timeout", type=float, default=900, help="seconds to wait for the page, the kernel, the cells")
    p.add_argument("--screenshot", help="save a PNG of the page at the end")
    args = p.parse_args(argv)
    if args.cells < 0:
        p.error(f"--cells must be 0 (all) or more, got {args.cells}")
    return run(args.cells, args.timeout, args.screenshot)


if __name__ == "__main__":
    sys.exit(main())
