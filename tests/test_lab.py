"""01_data.ipynb in a real JupyterLab, driven by headless Chromium as a person would use it.

JupyterLab (from the project's environment, on the project's `kuairec` kernel) serves a copy of
the notebook whose parameters point at the tiny simulated data set; Chromium opens it, runs all
cells from the Run menu, and the test reads the train/val/test row counts from the rendered
table and compares them with what the notebook wrote to data.json. A screenshot of the executed
notebook goes to reports/screenshots/jupyterlab_01_data.png.

Chromium and chromedriver are Debian's packages, installed with apt-get when missing
(tests/browser.py); the test is skipped only when they cannot be installed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
from browser import BrowserUnavailable, ensure_browser
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from kuairec_utils.config import PROJ_ROOT

pytestmark = pytest.mark.slow

KERNEL = "kuairec"
KERNEL_DISPLAY = "Python (kuairec)"
NOTEBOOK = "01_data.ipynb"
SCREENSHOT = PROJ_ROOT / "reports" / "screenshots" / "jupyterlab_01_data.png"
SERVER_START_S = 90  # jupyter lab answering on its port
PAGE_LOAD_S = 90  # JupyterLab's UI, the notebook and its kernel ready
RUN_ALL_S = 300  # every cell executed
BIN = Path(sys.executable).parent

# Lab settings for the isolated config dir: every cell in the DOM (so all can be read), and no
# news or update check (no request leaves the machine, no toast over the screenshot).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def wait_for(what: str, check: Callable[[], object], timeout_s: float, every_s: float = 0.5):
    """Poll check() until it returns something truthy; fail after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def chromium() -> tuple[str, str]:
    """Debian's (chromium, chromedriver), installed when missing; skip if that is impossible."""
    try:
        return ensure_browser()
    except BrowserUnavailable as exc:
        pytest.skip(f"no browser for the JupyterLab test: {exc}")


@pytest.fixture
def lab_notebook(tiny_sim: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(JupyterLab root, work dir): the root holds 01_data.ipynb parameterized for tiny_sim."""
    root, work = tmp_path / "lab", tmp_path / "work"
    root.mkdir()
    nb = load_notebook_node(str(PROJ_ROOT / "notebooks" / NOTEBOOK))
    nb = parameterize_notebook(
        nb,
        {
            "raw_dir": str(tiny_sim),
            "interim_dir": str(work / "interim"),
            "metrics_dir": str(work / "metrics"),
            "figures_dir": str(work / "figures"),
        },
        kernel_name=KERNEL,
    )
    assert nb.metadata.kernelspec.name == KERNEL
    nbformat.write(nb, str(root / NOTEBOOK))
    return root, work


@pytest.fixture
def lab_server(lab_notebook: tuple[Path, Path], tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A headless `jupyter lab` on 127.0.0.1 serving the notebook: yields (base URL, token).
    Shut down (with its kernels) on teardown."""
    root, _ = lab_notebook
    jupyter = tmp_path / "jupyter"
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        # isolated from the user's config, runtime and data dirs; the project's kernel is
        # still found in <env>/share/jupyter/kernels (installed there by `make env`)
        "JUPYTER_CONFIG_DIR": str(jupyter / "config"),
        "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"),
        "JUPYTER_DATA_DIR": str(jupyter / "data"),
        "IPYTHONDIR": str(jupyter / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    for plugin, values in LAB_SETTINGS.items():
        package, name = plugin.rsplit("/", 1)
        path = (
            jupyter / "config" / "lab" / "user-settings" / package / f"{name}.jupyterlab-settings"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    specs = subprocess.run(
        [str(BIN / "jupyter"), "kernelspec", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert KERNEL in json.loads(specs.stdout)["kernelspecs"], (
        f"the project's kernel {KERNEL!r} is not installed in {sys.prefix}: run `make env`"
    )
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "jupyterlab.log").open("w")
    proc = subprocess.Popen(
        [
            str(BIN / "jupyter"),
            "lab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.open_browser=False",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def answers() -> bool:
        if proc.poll() is not None:
            log.flush()
            pytest.fail(
                f"jupyter lab exited with {proc.returncode}:\n"
                + (tmp_path / "jupyterlab.log").read_text()[-3000:]
            )
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    try:
        wait_for("jupyter lab to answer", answers, SERVER_START_S)
        yield base, token
    finally:
        # a clean shutdown also stops the kernels it started; then terminate, then kill
        try:
            request = urllib.request.Request(
                f"{base}/api/shutdown?token={token}", method="POST", data=b""
            )
            urllib.request.urlopen(request, timeout=10).close()
        except (urllib.error.URLError, OSError):
            pass
        for sig, grace_s in ((None, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            if sig is not None and proc.poll() is None:
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=grace_s)
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


@pytest.fixture
def chrome(chromium: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Headless Chromium driven through Debian's chromedriver (selenium downloads nothing)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium-manager must not fetch anything
    browser, driver_path = chromium
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(arg)
    service = Service(executable_path=driver_path, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(PAGE_LOAD_S)
    try:
        yield driver
    finally:
        driver.quit()


PROMPTS_JS = """
return [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
  .map(p => p.textContent.trim());
"""


def test_01_data_in_jupyterlab(chrome, lab_server, lab_notebook: tuple[Path, Path]) -> None:
    from selenium.webdriver.common.by import By

    base, token = lab_server
    _, work = lab_notebook
    chrome.get(f"{base}/lab/tree/{NOTEBOOK}?token={token}")

    def kernel_ready() -> bool:
        names = chrome.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Toolbar-kernelName")
        status = chrome.find_elements(
            By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Notebook-ExecutionIndicator"
        )
        cells = chrome.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell")
        idle = any(s.get_attribute("data-status") == "idle" for s in status)
        return bool(cells) and any(KERNEL_DISPLAY in n.text for n in names) and idle

    wait_for(f"the notebook open on an idle {KERNEL_DISPLAY!r} kernel", kernel_ready, PAGE_LOAD_S)

    # Run > Run All Cells, from the menu bar as a person would
    run_menu = next(
        item
        for item in chrome.find_elements(By.CSS_SELECTOR, "#jp-MainMenu .lm-MenuBar-item")
        if item.text.strip() == "Run"
    )
    run_menu.click()
    run_all = wait_for(
        "Run All Cells in the open Run menu",
        lambda: chrome.find_elements(
            By.CSS_SELECTOR, '#jp-mainmenu-run .lm-Menu-item[data-command="runmenu:run-all"]'
        ),
        10,
    )
    assert run_all[0].text.startswith("Run All Cells"), run_all[0].text
    run_all[0].click()

    def finished() -> list[str] | None:
        prompts = chrome.execute_script(PROMPTS_JS)
        started = any(re.fullmatch(r"\[\d+\]:", p) for p in prompts)
        return prompts if started and not any("*" in p for p in prompts) else None

    prompts = wait_for("Run All Cells to finish", finished, RUN_ALL_S, every_s=1)
    errors = [
        e.text
        for e in chrome.find_elements(
            By.CSS_SELECTOR,
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]',
        )
        if "Traceback" in e.text or "Error" in e.text
    ]
    assert all(re.fullmatch(r"\[\d+\]:", p) for p in prompts), (prompts, errors)

    # read the row counts per split from the rendered table of the last cell
    last = chrome.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell")[-1]
    chrome.execute_script("arguments[0].scrollIntoView({block: 'end'});", last)
    table = last.find_element(By.CSS_SELECTOR, ".jp-OutputArea-output table")
    header = [th.text.strip() for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    splits = [h for h in header if h]
    rows = {
        tr.find_element(By.CSS_SELECTOR, "th").text.strip(): [
            td.text.strip() for td in tr.find_elements(By.CSS_SELECTOR, "td")
        ]
        for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")
    }
    on_page = {
        split: int(n.replace(",", "")) for split, n in zip(splits, rows["rows"], strict=True)
    }
    print(f"read from the page: rows per split {on_page}")

    summary = json.loads((work / "metrics" / "data.json").read_text())
    assert on_page == summary["n_interactions"]
    assert set(on_page) == {"train", "val", "test"} and all(n > 0 for n in on_page.values())

    time.sleep(1)  # let the scroll settle before the picture
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert chrome.save_screenshot(str(SCREENSHOT))
    png = SCREENSHOT.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000, len(png)
