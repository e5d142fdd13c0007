"""The eval's report: ``report.json`` for machines (``eval compare``, a brand's CI) and ``report.html`` for
people: one self-contained page (inline CSS and SVG, no script, no CDN) with the measures, their
distributions, the hostile set, and the worst drafts beside what the human wrote.

Every text from the data or the model reaches the page through Jinja2's autoescaping; chart geometry is
computed here and only numbers go into the SVG.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from assistant.eval import measures
from assistant.eval.measures import Gate

TEMPLATES = Path(__file__).parent / "templates"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
WORST = 10

_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"], default=True),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def build(results: Sequence[Mapping[str, Any]], run: Mapping[str, Any], gates: Sequence[Gate]) -> dict[str, Any]:
    """The report as data: what ``report.json`` holds and ``report.html`` shows."""
    summary = measures.summarize(results)
    return {
        "run": dict(run),
        "measures": summary,
        "counts": measures.counts(results),
        "gates": [{"gate": str(g), "passed": g.failure(summary) is None, "why": g.failure(summary)} for g in gates],
        "hostile": [{key: r.get(key) for key in ("id", "hostile", "mentions", "draft", "outcome", "obeyed", "flags")}
                    for r in results if r["hostile"] is not None],
        "worst": worst(results),
        "distributions": {
            "chrf": [r["chrf"] for r in results if r["hostile"] is None and r.get("chrf") is not None],
            "latency_ms": [r["latency_ms"] for r in results
                           if r["hostile"] is None and r.get("latency_ms") is not None and not r.get("fallback")],
        },
    }


def badness(result: Mapping[str, Any]) -> float:
    """How bad a draft is for the report's "worst" list: broken rules first, then distance from the human."""
    return (4 * (not result["policy_pass"]) + 4 * bool(result["leaks"]) + 4 * ("output_echo" in result["flags"])
            + 2 * bool(result["other_handles"]) + 2 * (not result["length_pass"]) + 1 * result["fallback"]
            + (1 - (result.get("chrf") or 0) / 100))


def worst(results: Sequence[Mapping[str, Any]], count: int = WORST) -> list[dict[str, Any]]:
    drafted = [r for r in results if r["hostile"] is None and r["outcome"] == "drafted"]
    return [dict(r, badness=round(badness(r), 3)) for r in sorted(drafted, key=badness, reverse=True)[:count]]


def write(out: Path, report: Mapping[str, Any]) -> None:
    (out / REPORT_JSON).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / REPORT_HTML).write_text(render_html(report), encoding="utf-8")


def read(directory: Path) -> dict[str, Any]:
    """A report written by ``write``; ``ValueError`` when the directory holds none."""
    path = directory / REPORT_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{directory} holds no {REPORT_JSON}: run `assistant eval run` there first") from None
    except ValueError:
        raise ValueError(f"{path} is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("measures"), dict):
        raise ValueError(f"{path} is not an eval report")
    return data


def render_html(report: Mapping[str, Any]) -> str:
    summary = report["measures"]
    rates = [(m, summary.get(m.name)) for m in measures.MEASURES if m.unit == "rate"]
    others = [(m, summary.get(m.name)) for m in measures.MEASURES if m.unit != "rate"]
    return _env.get_template("report.html").render(
        report=report, rates=rates, others=others,
        rate_bars=bars([(m.name, value) for m, value in rates if value is not None]),
        chrf_histogram=histogram(report["distributions"]["chrf"], 0, 100, 10),
        latency_histogram=histogram(report["distributions"]["latency_ms"], 0,
                                    max(report["distributions"]["latency_ms"] or [1]), 10),
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def bars(items: Sequence[tuple[str, float]], width: int = 320) -> list[dict[str, Any]]:
    """Horizontal bars of rates (0 to 1): a label, the value and the bar's length in pixels."""
    return [{"label": label, "value": value, "length": round(max(0.0, min(1.0, value)) * width, 1), "y": i * 22}
            for i, (label, value) in enumerate(items)]


def histogram(values: Sequence[float], low: float, high: float, bins: int,
              height: int = 120) -> list[dict[str, Any]]:
    """``bins`` equal bins from ``low`` to ``high`` (the top bin holds ``high``), each with its bar height."""
    if high <= low:
        high = low + 1
    size = (high - low) / bins
    tally = [0] * bins
    for value in values:
        tally[min(bins - 1, max(0, int((value - low) / size)))] += 1
    top = max(tally) or 1
    return [{"count": n, "from": round(low + i * size, 1), "to": round(low + (i + 1) * size, 1),
             "height": round(n / top * height, 1), "x": i * 32} for i, n in enumerate(tally)]


__all__ = ["REPORT_HTML", "REPORT_JSON", "build", "read", "render_html", "write"]
