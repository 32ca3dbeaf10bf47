"""Regenerate the README's screenshot of a real report: ``cnnscope report resnet18`` opened in headless
Chromium at 1280 px wide, the top 1280×1400 of the page.

    python examples/report_screenshot.py          # writes docs/images/report-resnet18.png
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile

import cnnscope
from cnnscope.report.browser import screenshot

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "images", "report-resnet18.png")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cnnscope-shot-") as folder:
        page = os.path.join(folder, "resnet18.html")
        cnnscope.html_report("resnet18", page)
        png = os.path.join(folder, "shot.png")
        screenshot(page, png, 1280, 1400)
        os.makedirs(os.path.dirname(OUT), exist_ok=True)
        shutil.copyfile(png, OUT)
    print(f"wrote {os.path.relpath(OUT, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
