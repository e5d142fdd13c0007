"""Fail CI when a run did not prove what it claims: no tests, skipped browser tests, or not on the database
it was meant for. A third argument, ``local_model``, names the local-model tier: it has no browser tests and fails when
one of its tests was skipped.
Usage: check_report.py JUNIT_XML EXPECTED_DATABASE [local_model]"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def main(path: str, database: str, tier: str = "") -> int:
    root = ET.parse(path).getroot()
    cases = root.iter("testcase")
    ran = skipped = browser_ran = 0
    for case in cases:
        was_skipped = case.find("skipped") is not None
        ran += not was_skipped
        skipped += was_skipped
        if "tests.browser" in (case.get("classname") or "") and not was_skipped:
            browser_ran += 1
    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    problems = []
    if ran == 0:
        problems.append("no test ran")
    if tier == "local_model":
        if skipped:
            problems.append(f"{skipped} local-model tests were skipped")
    elif browser_ran == 0:
        problems.append("no browser test ran")
    if properties.get("database") != database:
        problems.append(f"the suite ran on {properties.get('database')!r}, not {database!r}")
    print(f"{database}: {ran} tests ran, {skipped} skipped, {browser_ran} in the browser")
    for problem in problems:
        print(f"CI check failed: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
