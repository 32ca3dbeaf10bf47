"""Writing ``cnnscope report``'s files: the format from ``--format`` or the output's suffix, every file
written atomically (a Markdown report writes its charts beside it, each atomically, before itself)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import CnnscopeError
from .html import CHARTS, render_chart, render_html, render_markdown

SUFFIXES = {".html": "html", ".htm": "html", ".svg": "svg", ".png": "png", ".md": "markdown"}


def format_for(output: str | os.PathLike, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in ("html", "svg", "png", "markdown"):
            raise CnnscopeError(f"unknown report format '{fmt}'; choose html, svg, png or markdown")
        return fmt
    suffix = Path(output).suffix.lower()
    if suffix not in SUFFIXES:
        raise CnnscopeError(f"cannot tell the report format from '{output}': name it .html, .svg, .png or .md, "
                            f"or give --format")
    return SUFFIXES[suffix]


def write_report(data: dict, output: str | os.PathLike, fmt: str | None = None, chart: str = "macs") -> list[str]:
    """Write the report of ``data`` (``cnnscope.report_data``) to ``output``; returns the paths written."""
    from ..fileio import atomic_path, atomic_write_text, check_output_path

    if str(output) == "-":
        raise CnnscopeError("'-o -' is not for reports: give a file name (report.html, chart.svg, ...)")
    fmt = format_for(output, fmt)
    check_output_path(output)
    if fmt == "html":
        atomic_write_text(output, render_html(data))
        return [str(output)]
    if fmt == "svg":
        atomic_write_text(output, render_chart(data, chart))
        return [str(output)]
    if fmt == "png":
        from .browser import screenshot

        svg = render_chart(data, chart)
        import re

        m = re.search(r'<svg[^>]*\sheight="(\d+)"', svg)
        height = int(m.group(1)) if m else 400
        with tempfile.TemporaryDirectory(prefix="cnnscope-report-") as folder:
            page = os.path.join(folder, "chart.html")
            with open(page, "w", encoding="utf-8") as f:
                f.write('<!DOCTYPE html><html><head><meta charset="utf-8"><style>body{margin:0;background:#fff}'
                        '</style></head><body>' + svg.split("\n", 1)[1] + "</body></html>")
            png = os.path.join(folder, "chart.png")      # the browser picks the image type by the suffix
            screenshot(page, png, 720, height)
            with atomic_path(output) as tmp:
                with open(png, "rb") as src, open(tmp, "wb") as dst:
                    dst.write(src.read())
        return [str(output)]
    # markdown: every chart with data as an SVG beside the .md, named after it
    out = Path(output)
    written = {}
    for name in CHARTS:
        try:
            svg = render_chart(data, name)
        except CnnscopeError:
            continue
        path = out.with_name(f"{out.stem}-{name}.svg")
        atomic_write_text(path, svg)
        written[name] = path.name
    atomic_write_text(out, render_markdown(data, written))
    return [str(out.with_name(p)) for p in written.values()] + [str(out)]
