"""`assistant policy check FILE` and `assistant policy test FILE`: what an admin runs before uploading
a policy, with answers that point at the line to fix."""

from __future__ import annotations

from pathlib import Path

import click

from assistant.policy.checks import check_text, effective_limit, run_examples
from assistant.policy.length import count_length
from assistant.policy.loader import PolicyFileError, load_policy
from assistant.policy.model import Finding, Policy

_EXCERPT_WIDTH = 60


def _load(path: Path) -> Policy:
    """The policy in `path`, or exit 1 after printing each problem in it."""
    content = path.read_bytes()
    try:
        return load_policy(content.decode("utf-8"), source_name=str(path))
    except UnicodeDecodeError as error:
        line = content.count(b"\n", 0, error.start) + 1
        messages = [f"{path}:{line}: not UTF-8 text ({error.reason})"]
    except PolicyFileError as error:
        messages = error.messages
    for message in messages:
        click.echo(message, err=True)
    raise SystemExit(1)


def _describe(text: str, finding: Finding) -> str:
    """One line per finding: severity, rule, span, message, and the words it is about (if any)."""
    line = f"{finding.severity} {finding.rule} [{finding.start}:{finding.end}] {finding.message}"
    excerpt = text[finding.start:finding.end]
    if len(excerpt) > _EXCERPT_WIDTH:
        excerpt = excerpt[:_EXCERPT_WIDTH - 1] + "…"
    return f"{line}: {excerpt!r}" if excerpt else line


@click.group("policy")
def policy() -> None:
    """Check a brand's tone policy file before using it."""


@policy.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def check(file: Path) -> None:
    """Validate FILE and run its [[examples]]; exits 1 on any problem or failing example."""
    loaded = _load(file)
    results = run_examples(loaded)
    for result in results:
        where = f"{file}:{result.line}: examples[{result.index}] ({result.platform})"
        if result.ok:
            click.echo(f"{where}: ok, {result.actual}")
            continue
        click.echo(f"{where}: FAIL, expected {result.expected}, got {result.actual}")
        for finding in result.findings:
            click.echo(f"    {_describe(result.text, finding)}")
    failed = sum(not result.ok for result in results)
    click.echo(f"{file}: valid, {len(results) - failed} of {len(results)} examples as expected")
    raise SystemExit(1 if failed else 0)


@policy.command("test")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--platform", required=True, help="Platform the reply is for, e.g. x, bluesky, mastodon.")
@click.option("--text", required=True, help="The reply text to check.")
@click.option("--author", default=None, help="Handle of the person the reply answers.")
def test(file: Path, platform: str, text: str, author: str | None) -> None:
    """Print the length and every finding for one reply text; findings do not change the exit code."""
    loaded = _load(file)
    click.echo(f"length: {count_length(platform, text)} of {effective_limit(loaded, platform)} "
               f"(as {platform.lower()} counts)")
    findings = check_text(loaded, text, platform=platform, author_handle=author)
    for finding in findings:
        click.echo(_describe(text, finding))
    if not findings:
        click.echo("no findings")
