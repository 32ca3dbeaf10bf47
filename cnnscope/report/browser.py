"""A headless Chromium, when one is installed, for ``--format png`` (a screenshot of one chart).

Started with a new empty profile and every background-networking feature off, so it makes no
connection and leaves nothing behind; killed after ``timeout`` seconds.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from ..errors import CnnscopeError

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio", "--disable-extensions"]


def find_browser() -> str | None:
    """``$CNNSCOPE_BROWSER``, else the first Chromium or Chrome on the PATH, else None."""
    env = os.environ.get("CNNSCOPE_BROWSER")
    if env:
        return env if shutil.which(env) or os.path.isfile(env) else None
    return next((p for p in map(shutil.which, NAMES) if p), None)


def run_browser(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    browser = find_browser()
    if browser is None:
        raise CnnscopeError("--format png needs Chromium or Chrome (apt-get install chromium, or set "
                            "CNNSCOPE_BROWSER); --format svg needs nothing")
    with tempfile.TemporaryDirectory(prefix="cnnscope-browser-") as profile:
        try:
            return subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                                  text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise CnnscopeError(f"the browser ({browser}) did not finish within {timeout:.0f} s") from None


def screenshot(html_path: str, png_path: str, width: int, height: int) -> None:
    """Render ``html_path`` at width×height CSS pixels into ``png_path``."""
    result = run_browser([f"--screenshot={png_path}", f"--window-size={width},{height}", "--virtual-time-budget=3000",
                          "file://" + os.path.abspath(html_path)])
    if not os.path.isfile(png_path) or os.path.getsize(png_path) == 0:
        tail = (result.stderr or "").strip().splitlines()[-1:] or [""]
        raise CnnscopeError(f"the browser wrote no screenshot ({tail[0][:160]})")
