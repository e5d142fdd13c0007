"""``assistant eval run`` and ``assistant eval compare`` (SPEC 12). The runner and the report load inside the
commands, so every other ``assistant`` command starts without them."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sys
from pathlib import Path
from typing import Any

import click

from assistant.eval.measures import BY_NAME, GateError, compare, parse_gates


def _gates(ctx: click.Context, param: click.Parameter, value: str | None) -> list[Any]:
    if value is None:
        return []
    try:
        return parse_gates(value)
    except GateError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@click.group("eval")
def eval_group() -> None:
    """Replay past conversations through drafting and measure the drafts."""


@eval_group.command("run")
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for report.json, report.html, cases.ndjson and the scratch database; the same folder "
                   "again resumes the run.")
@click.option("--brand", "brand", default=None, help="Draft with this brand's name and policy (read from the "
              "configured database, never written).")
@click.option("--policy", "policy_file", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Draft with this policy file (wins over --brand's policy).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Replay only the first N conversations.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Model requests in flight at once (conversations are prepared ahead to keep them busy).")
@click.option("--judge-model", default=None, help="Grade each draft with this model on the configured endpoint.")
@click.option("--local-model", is_flag=True, help="Draft with the packaged local model (`make local-model`), "
              "started for this run on a free loopback port.")
@click.option("--gate", "gates", default=None, callback=_gates,
              help='Conditions the run must meet, e.g. "policy_pass>=0.98,echo<=0.01"; exit 1 when one fails.')
def eval_run(dataset: Path, out: Path, brand: str | None, policy_file: Path | None, limit: int | None,
             concurrency: int, judge_model: str | None, local_model: bool, gates: list[Any]) -> None:
    """Replay DATASET (NDJSON or the support-tweet CSV layout of `assistant import`) into a scratch database,
    draft every brand reply again, and write DIR/report.json and DIR/report.html."""
    from assistant.cli_support import settings
    from assistant.errors import AssistantError, LocalModelError
    from assistant.eval import report as reports
    from assistant.eval import runner
    from assistant.policy import PolicyFileError

    logging.getLogger("alembic").setLevel(logging.WARNING)  # a line per migration drowns the progress bar
    current = settings()
    options = runner.Options(dataset=dataset, out=out, brand=brand, policy_file=policy_file, limit=limit,
                             concurrency=concurrency, judge_model=judge_model)
    if not current.llm_configured and not local_model:
        click.echo("No model configured (ASSISTANT_LLM_BASE_URL and ASSISTANT_LLM_MODEL): every draft will be the "
                   "fallback.", err=True)
    bar: Any = None

    def on_total(total: int) -> None:
        nonlocal bar
        bar = click.progressbar(length=total, label=f"Drafting {total} cases", file=sys.stderr,
                                show_pos=True)
        bar.__enter__()

    try:
        with contextlib.ExitStack() as stack:
            if local_model:
                from assistant.model.local_model import LocalModelServer, settings_for

                current = settings_for(current, stack.enter_context(LocalModelServer()).base_url)
            outcome = asyncio.run(runner.run(current, options, progress=lambda n: bar.update(n), on_total=on_total))
    except (runner.RunRefused, AssistantError, PolicyFileError, LocalModelError, OSError) as exc:
        raise click.ClickException(_message(exc)) from None
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)

    run_info = dict(outcome.fingerprint, dataset=str(dataset), limit=limit, concurrency=concurrency,
                    conversations_in_dataset=len(outcome.dataset.cases), invalid_rows=outcome.dataset.invalid,
                    finished_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    reviewer_edits=outcome.setup.reviewer_edits,
                    this_invocation={"cases": outcome.ran, "seconds": round(outcome.seconds, 2),
                                     "cases_per_second": round(outcome.ran / outcome.seconds, 2)
                                     if outcome.seconds > 0 and outcome.ran else None})
    built = reports.build(outcome.results, run_info, gates)
    reports.write(out, built)
    _print_summary(built, out / reports.REPORT_HTML)
    failed = [gate["why"] for gate in built["gates"] if not gate["passed"]]
    if failed:
        for why in failed:
            click.echo(f"gate failed: {why}", err=True)
        raise SystemExit(1)


def _message(exc: Exception) -> str:
    from assistant.errors import AssistantError
    from assistant.policy import PolicyFileError

    if isinstance(exc, AssistantError):
        errors = getattr(exc, "errors", None) or []
        return "; ".join(f"{e['field']}: {e['message']}" for e in errors) or exc.detail
    if isinstance(exc, PolicyFileError):
        return "\n".join(exc.messages)
    return str(exc)


def _print_summary(built: dict[str, Any], page: Path) -> None:
    counts, summary = built["counts"], built["measures"]
    click.echo(f"{counts['cases']} conversations: {counts['drafted']} drafted, {counts['escalated']} escalated, "
               f"{counts['skipped']} skipped, {counts['errors']} errors; {counts['hostile']} hostile probes, "
               f"{summary['hostile_fail']} obeyed")
    for name, value in summary.items():
        if value is not None:
            click.echo(f"  {name:<20} {_show(name, value)}")
    click.echo(f"report: {page}")


def _show(name: str, value: float | int) -> str:
    return f"{value:.3f}" if BY_NAME[name].unit == "rate" else f"{value:g}"


@eval_group.command("compare")
@click.argument("before", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("after", type=click.Path(exists=True, file_okay=False, path_type=Path))
def eval_compare(before: Path, after: Path) -> None:
    """Per-measure deltas from the run in BEFORE to the run in AFTER."""
    from assistant.eval import report as reports

    try:
        a, b = reports.read(before), reports.read(after)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{'measure':<20} {'before':>10} {'after':>10} {'delta':>10}  verdict")
    for delta in compare(a["measures"], b["measures"]):
        name = delta.measure.name
        shown = ["—" if v is None else _show(name, v) for v in (delta.before, delta.after)]
        change = "—" if delta.change is None else f"{delta.change:+g}"
        click.echo(f"{name:<20} {shown[0]:>10} {shown[1]:>10} {change:>10}  {delta.verdict}")
    for label, data in (("before", a), ("after", b)):
        run = data.get("run", {})
        click.echo(f"{label}: model {run.get('model')}, prompt {str(run.get('prompt_hash'))[:12]}, "
                   f"policy {str(run.get('policy_hash'))[:12]}, dataset {str(run.get('dataset_sha256'))[:12]}")


__all__ = ["eval_group"]
