"""Renderers of a check report: ``text`` (a table per model), ``json``, ``junit`` (JUnit XML for CI test
reports) and ``github`` (workflow commands that become inline annotations on a pull request).

Rendering never computes: every number and verdict comes from ``CheckReport.to_dict()``; this module
only formats them.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from ..errors import CnnscopeError
from ..units import human_bytes, human_count, parse_count
from .budgets import GROWTH, MAX, METRICS

MAC_NOTE = "1 MAC = one multiply-accumulate (conv/linear/matmul); FLOPs = 2 × MACs; MB = 10^6 bytes"

RENDERERS: dict[str, Callable[[dict], str]] = {}


def register_renderer(name: str):
    def deco(fn):
        RENDERERS[name] = fn
        return fn

    return deco


def render(report: dict, fmt: str = "text") -> str:
    return RENDERERS[fmt](report)


# --------------------------------------------------------------------------------------------- words

def fmt_value(value: Any, unit: str, exact: bool = True) -> str:
    """A measurement: 61706 -> '61,706 (61.7K)'; 246824 bytes -> '246,824 B (246.8 KB)';
    pixels [212, 212] -> '212×212'. ``exact=False`` gives only the short form ('61.7K', '246.8 KB')."""
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.3f} ms"
    if unit == "pixels":
        if value == "global":
            return "global"
        if isinstance(value, dict):
            value = value["size"]
        return "×".join(str(int(v)) for v in value)
    short = human_bytes(value) if unit == "bytes" else human_count(value)
    if not exact or abs(value) < 1000:
        return f"{int(round(value))} B" if unit == "bytes" and abs(value) < 1000 else short
    return f"{int(round(value)):,}{' B' if unit == 'bytes' else ''} ({short})"


def fmt_budget_value(check: dict) -> str:
    """A budget as the user can recognise it: bytes as written ('95MiB'; a bare '100' is '100 MB');
    counts in short form when that is exact ('25M'), else exactly ('61,706')."""
    unit, limit, text = check["unit"], check["limit"], str(check.get("budget_text", ""))
    if "=" in text and check["kind"] != GROWTH:      # macs-at: "640=40G"
        size, _, value = text.partition("=")
        return f"{fmt_budget_value(dict(check, budget_text=value))} at {size}"
    if unit == "pixels":
        return fmt_value(limit, unit)
    if unit == "ms":
        return f"{limit:g} ms"
    if unit == "bytes":
        return f"{text} MB" if text and not any(ch.isalpha() for ch in text) else (text or human_bytes(limit))
    short = human_count(limit)
    try:
        return short if parse_count(short) == limit else f"{int(limit):,}"
    except CnnscopeError:  # pragma: no cover - human_count always parses back
        return f"{int(limit):,}"


def fmt_limit(check: dict) -> str:
    """'≤ 25M', '≥ 200×200', '≤ +5% of the baseline' (stable: good as a JUnit test name)."""
    if check["kind"] == GROWTH:
        return f"≤ +{check['budget_text']} over the baseline"
    return f"{'≤' if check['kind'] == MAX else '≥'} {fmt_budget_value(check)}"


def fmt_headroom(h: float | None) -> str:
    return "-" if h is None else f"{h:+.1%}"


def fmt_growth(g: float | None) -> str:
    return "n/a" if g is None else f"{g:+.1%}"


def check_label(check: dict) -> str:
    """Short name of a check: 'params', 'size-mb', 'rf', 'params growth'."""
    return f"{check['metric']} growth" if check["kind"] == GROWTH else check["metric"]


def describe(model: dict, check: dict) -> str:
    """One sentence for a log line, an annotation or a JUnit failure message."""
    name, label, unit = model["name"], check_label(check), check["unit"]
    actual = fmt_value(check["actual"], unit)
    headroom = check["headroom"]
    if check["kind"] == GROWTH:
        verdict = "within" if check["passed"] else "more than"
        return (f"{name}: {check['metric']} {actual} changed {fmt_growth(check['growth'])} from the baseline "
                f"{fmt_value(check['baseline'], unit)}, {verdict} the allowed +{check['budget_text']}")
    limit = fmt_budget_value(check)
    if unit == "ms":
        spread = f"median of the runs, IQR {check.get('tolerance') or 0:.3f} ms"
        if check["passed"] and check["actual"] > check["limit"]:
            return f"{name}: {label} {actual} ({spread}) is over the budget {limit} but within the measured spread"
        if not check["passed"]:
            return (f"{name}: {label} {actual} ({spread}) exceeds the budget {limit} by more than the measured "
                    f"spread")
        return f"{name}: {label} {actual} ({spread}) is within the budget {limit} ({fmt_headroom(headroom)} headroom)"
    if check["passed"]:
        return f"{name}: {label} {actual} is within the budget {limit} ({fmt_headroom(headroom)} headroom)"
    if check["kind"] == MAX:
        by = "" if headroom is None else f" by {-headroom:.1%}"
        return f"{name}: {label} {actual} exceeds the budget {limit}{by}"
    return f"{name}: {label} {actual} is below the minimum {limit} ({fmt_headroom(headroom)})"


def _shape(s) -> str:
    return "×".join(map(str, s))


def _tally(report: dict) -> tuple[int, int]:
    checks = [c for m in report["models"] for c in m["checks"]]
    return len(checks), sum(1 for c in checks if not c["passed"])


# ------------------------------------------------------------------------------------------- text

def _text_row(metric, c: dict | None, g: dict | None, metrics: dict, with_growth: bool) -> list[str] | None:
    """metric, budget, actual, headroom, [baseline (growth)], verdict; None for a metric not measured."""
    actual = c["actual"] if c else metrics.get(metric.field)
    if actual is None or (metric.name == "uncounted-ops" and not actual and c is None):
        return None                      # nothing uncounted and no budget on it: nothing to say
    row = [metric.name, fmt_limit(c) if c else "-", fmt_value(actual, metric.unit),
           fmt_headroom(c["headroom"]) if c else "-"]
    if with_growth:
        row.append("-" if g is None else
                   f"{fmt_value(g['baseline'], g['unit'], exact=False)} ({fmt_growth(g['growth'])})")
    problems = ([] if c is None or c["passed"] else ["EXCEEDED" if c["kind"] == MAX else "TOO SMALL"]) + \
               ([] if g is None or g["passed"] else ["GREW"])
    row.append(" + ".join(problems) if problems else ("ok" if c or g else ""))
    return row


@register_renderer("text")
def render_text(report: dict) -> str:
    """A table per model, one row per metric: budget, actual, headroom, the baseline and growth when one
    was compared, and the verdict. Metrics without a budget are shown for context."""
    from tabulate import tabulate

    out = []
    for m in report["models"]:
        if m.get("error"):
            out += [f"{m['name']}  ERROR (not analysed)", f"error: {m['error']}", ""]
            continue
        budget_of = {c["metric"]: c for c in m["checks"] if c["kind"] != GROWTH}
        growth_of = {c["metric"]: c for c in m["checks"] if c["kind"] == GROWTH}
        verdict = "PASS" if m["passed"] else "FAIL"
        out.append(f"{m['name']}  (input {_shape(m['input_shape'])}, analysed in {m['seconds']:.2f} s)  {verdict}")
        headers = ["metric", "budget", "actual", "headroom"]
        if growth_of:
            headers.append(f"baseline (growth, max +{next(iter(growth_of.values()))['budget_text']})")
        headers.append("verdict")
        rows = [_text_row(metric, budget_of.get(metric.name), growth_of.get(metric.name), m["metrics"],
                          bool(growth_of)) for metric in METRICS.values()]
        rows = [r for r in rows if r is not None]
        align = ("left", "left", "right", "right") + (("right",) if growth_of else ()) + ("left",)
        out.append(tabulate(rows, headers=headers, disable_numparse=True, colalign=align))
        if m.get("baseline_missing"):
            out.append(f"note: the baseline has no entry for {m['name']}; add it with --update-baseline")
        shrunk = [g["metric"] for g in growth_of.values() if g["growth"] is not None and g["growth"] < -0.01]
        if shrunk and m["passed"]:
            out.append(f"note: {', '.join(shrunk)} shrank below the baseline; lock the gain in with --update-baseline")
        out.append("")
    total, failed = _tally(report)
    n = len(report["models"])
    summary = f"{n} model{'s' * (n != 1)}, {total} check{'s' * (total != 1)}: "
    summary += f"{total - failed} held, {failed} failed" if failed else "all held"
    errors = sum(1 for m in report["models"] if m.get("error"))
    if errors:
        summary += f"; {errors} model{'s' * (errors != 1)} could not be analysed"
    if report.get("baseline_updated"):
        summary += f"; baseline written to {report['baseline']}"
    out.append(summary + ".")
    out.append(f"Convention: {MAC_NOTE}.")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------- json

@register_renderer("json")
def render_json(report: dict) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------------------------------ junit

@register_renderer("junit")
def render_junit(report: dict) -> str:
    """JUnit XML: one <testsuite> per model, one <testcase> per budget (a model without budgets gets
    one passing "analysed" case so it still shows up in the CI test report)."""
    import xml.etree.ElementTree as ET

    total, failed = _tally(report)
    n_errors = sum(1 for m in report["models"] if m.get("error"))
    root = ET.Element("testsuites", name="cnnscope check", tests="0", failures=str(failed), errors=str(n_errors),
                      time=f"{sum(m['seconds'] for m in report['models']):.3f}")
    n_cases = 0
    for m in report["models"]:
        suite = ET.SubElement(root, "testsuite", name=m["name"], tests=str(max(1, len(m["checks"]))),
                              failures=str(sum(1 for c in m["checks"] if not c["passed"])),
                              errors="1" if m.get("error") else "0",
                              skipped="0", time=f"{m['seconds']:.3f}")
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="model", value=m["model"])
        ET.SubElement(props, "property", name="input_shape", value="x".join(map(str, m["input_shape"])))
        cases = m["checks"] or [None]
        for c in cases:
            n_cases += 1
            if m.get("error"):
                case = ET.SubElement(suite, "testcase", classname=f"cnnscope.check.{m['name']}", name="analysed",
                                     time="0")
                ET.SubElement(case, "error", message=m["error"], type="ModelError").text = m["error"]
                continue
            if c is None:
                ET.SubElement(suite, "testcase", classname=f"cnnscope.check.{m['name']}", name="analysed", time="0")
                continue
            case = ET.SubElement(suite, "testcase", classname=f"cnnscope.check.{m['name']}",
                                 name=f"{check_label(c)} {fmt_limit(c)}", time="0")
            if not c["passed"]:
                failure = ET.SubElement(case, "failure", message=describe(m, c),
                                        type="BaselineGrowth" if c["kind"] == GROWTH else "BudgetExceeded")
                failure.text = describe(m, c)
            else:
                ET.SubElement(case, "system-out").text = describe(m, c)
    root.set("tests", str(n_cases))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ----------------------------------------------------------------------------------------- github

def _escape_data(s: str) -> str:
    """Workflow-command message escaping (as @actions/core does)."""
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def _command(kind: str, props: dict[str, Any], message: str) -> str:
    p = ",".join(f"{k}={_escape_property(str(v))}" for k, v in props.items() if v is not None)
    return f"::{kind} {p}::{_escape_data(message)}" if p else f"::{kind}::{_escape_data(message)}"


def _annotation_path(origin: str) -> str:
    """GitHub resolves ``file=`` against the repository root (``$GITHUB_WORKSPACE``), not the step's
    working directory: make the config path relative to it when running in Actions."""
    import os

    workspace = os.environ.get("GITHUB_WORKSPACE")
    if not workspace:
        return origin
    rel = os.path.relpath(os.path.abspath(origin), workspace)
    return origin if rel.startswith("..") else rel.replace(os.sep, "/")


@register_renderer("github")
def render_github(report: dict) -> str:
    """GitHub Actions workflow commands, one per line: ``::error`` for every failed check (pointing at
    the config entry when the model came from one), ``::warning`` for a model missing from the
    baseline, ``::notice`` with the verdict of each model that passed."""
    lines = []
    for m in report["models"]:
        where = {"file": _annotation_path(m["origin"]), "line": m.get("line")} if m.get("origin") else {}
        if m.get("error"):
            lines.append(_command("error", {**where, "title": f"cnnscope check: {m['name']} could not be analysed"},
                                  f"{m['name']}: {m['error']}"))
            continue
        for c in m["checks"]:
            if not c["passed"]:
                lines.append(_command("error", {**where, "title": f"cnnscope check: {m['name']} {check_label(c)}"},
                                      describe(m, c)))
        if m.get("baseline_missing"):
            lines.append(_command("warning", {**where, "title": f"cnnscope check: {m['name']} not in baseline"},
                                  f"{m['name']}: the baseline {report.get('baseline')} has no entry for it; "
                                  f"add it with --update-baseline"))
        if m["passed"]:
            tight = min((c for c in m["checks"] if c["headroom"] is not None), key=lambda c: c["headroom"],
                        default=None)
            msg = f"{m['name']}: all {len(m['checks'])} checks hold" if m["checks"] else \
                f"{m['name']}: analysed, no budgets set"
            if tight is not None:
                msg += (f"; least headroom: {check_label(tight)} {fmt_value(tight['actual'], tight['unit'])} "
                        f"{fmt_limit(tight)}, {fmt_headroom(tight['headroom'])}")
            lines.append(_command("notice", {"title": f"cnnscope check: {m['name']} passed"}, msg))
    return "\n".join(lines) + "\n"
