"""Debian's Chromium and chromedriver for the browser tests, installed with apt when missing.

Nothing here downloads a browser build: the browser and its driver come from Debian's packages
(`chromium`, `chromium-driver`), and selenium is pointed at that chromedriver so that its own
driver manager never runs.  Run as a script (`python tests/browser.py`) to install them ahead of
the tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGES = ("chromium", "chromium-driver")
APT_TIMEOUT_S = 900  # apt-get update + install, each


class BrowserUnavailable(RuntimeError):
    """Chromium or chromedriver is missing and could not be installed; says why."""


def find_browser() -> tuple[str, str] | None:
    """(chromium, chromedriver) paths when both are installed, else None."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def _apt(*args: str) -> None:
    cmd = ["apt-get", *args]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        done = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BrowserUnavailable(f"`{' '.join(cmd)}` took over {APT_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise BrowserUnavailable(
            f"`{' '.join(cmd)}` failed (exit {done.returncode}): " + " | ".join(tail)
        )


def ensure_browser() -> tuple[str, str]:
    """(chromium, chromedriver), installing Debian's packages with apt-get when missing.

    Raises BrowserUnavailable, naming what failed, when they are missing and cannot be
    installed (not root, no apt-get, or apt-get failed).
    """
    found = find_browser()
    if found:
        return found
    what = " and ".join(PACKAGES)
    if shutil.which("apt-get") is None:
        raise BrowserUnavailable(
            f"{what} are not installed and there is no apt-get to install them"
        )
    if os.geteuid() != 0:
        raise BrowserUnavailable(
            f"{what} are not installed and apt-get needs root "
            f"(run `sudo apt-get install -y --no-install-recommends {' '.join(PACKAGES)}`)"
        )
    _apt("update")
    _apt("install", "-y", "--no-install-recommends", *PACKAGES)
    found = find_browser()
    if not found:
        raise BrowserUnavailable(f"apt-get installed {what} but chromium/chromedriver not on PATH")
    return found


if __name__ == "__main__":
    try:
        chromium, driver = ensure_browser()
    except BrowserUnavailable as exc:
        sys.exit(f"no browser: {exc}")
    print(f"chromium: {chromium}\nchromedriver: {driver}")
    version = subprocess.run([chromium, "--version"], capture_output=True, text=True, check=False)
    print(version.stdout.strip() or Path(chromium).name)
