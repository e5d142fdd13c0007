"""The import contracts in ``pyproject.toml`` hold for the code, and each of them bites: a copy of the package
with one forbidden import added breaks exactly the contracts that should catch it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACTS = {"No import circles": "no-circles", "Layers:": "layers", "The policy imports": "policy-alone",
             "People know nothing": "people-below-mentions", "People write only": "people-own-tables",
             "Jobs and webhooks": "plumbing-below-domains"}
"""Each contract's id by the start of its name, as the report prints it."""


def broken_contracts(package_parent: Path) -> set[str]:
    """The contracts ``lint-imports`` finds broken in the ``assistant`` package under ``package_parent``."""
    done = subprocess.run([str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=package_parent, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(package_parent), "PATH": "/usr/bin:/bin", "COLUMNS": "1000"})
    verdicts = [line for line in done.stdout.splitlines() if line.rstrip().endswith(("KEPT", "BROKEN"))
                or " KEPT (" in line or " BROKEN (" in line]
    assert len(verdicts) == len(CONTRACTS), done.stdout + done.stderr
    assert (done.returncode != 0) == any(" BROKEN" in line for line in verdicts), done.stdout
    return {contract for line in verdicts if " BROKEN" in line
            for start, contract in CONTRACTS.items() if line.startswith(start)}


def test_the_code_keeps_every_contract() -> None:
    assert broken_contracts(ROOT) == set()


@pytest.mark.slow
@pytest.mark.parametrize(("module", "forbidden_import", "expected"), [
    ("drafting/hygiene.py", "import assistant.drafting.service", {"no-circles"}),
    ("model/client.py", "import assistant.drafting.prompts", {"no-circles", "layers"}),
    ("pagination.py", "import assistant.auth.principal", {"layers"}),
    ("policy/service.py", "import assistant.people.service", {"policy-alone"}),
    ("people/service.py", "import assistant.review.service", {"no-circles", "people-below-mentions"}),
    ("people/privacy.py", "import assistant.db.outbox", {"people-own-tables"}),
    ("jobs/queue.py", "import assistant.drafting.service",
     {"no-circles", "layers", "plumbing-below-domains", "people-below-mentions"}),
    # The root command reaches every domain, so people would reach mentions through it too.
    ("people/commands.py", "import assistant.cli", {"no-circles", "layers", "people-below-mentions"}),
], ids=["module-circle", "model-imports-drafting", "pagination-imports-auth", "policy-imports-people", "people-imports-review",
        "people-imports-the-outbox-tables", "jobs-imports-drafting", "command-imports-the-root-command"])
def test_a_forbidden_import_breaks_its_contract(tmp_path: Path, module: str, forbidden_import: str,
                                                expected: set[str]) -> None:
    shutil.copytree(ROOT / "assistant", tmp_path / "assistant", ignore=shutil.ignore_patterns("__pycache__"))
    with (tmp_path / "assistant" / module).open("a") as source:
        source.write(f"\n{forbidden_import}\n")
    assert broken_contracts(tmp_path) == expected
