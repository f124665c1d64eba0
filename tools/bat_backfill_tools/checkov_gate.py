"""Judge a checkov JSON report: pass only with no failed check and a reason on every skip."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# What checkov writes when a Metadata skip has no comment.
NO_COMMENT = "No comment provided"


def _reports(report: Any) -> Iterable[Mapping[str, Any]]:
    """checkov prints one object for one framework and a list for several."""
    if isinstance(report, list):
        return [r for r in report if isinstance(r, dict)]
    if isinstance(report, dict):
        return [report]
    raise ValueError("not a checkov JSON report")


def find_problems(report: Any) -> list[str]:
    """One line per failed check, unexplained skip or parsing error; empty when clean.

    >>> find_problems({"results": {"failed_checks": [], "skipped_checks": []}})
    []
    """
    problems: list[str] = []
    seen_results = False
    for one in _reports(report):
        results = one.get("results")
        if not isinstance(results, dict):
            continue
        seen_results = True
        for check in results.get("failed_checks", []):
            problems.append(f"failed: {check['check_id']} on {check['resource']}")
        for check in results.get("skipped_checks", []):
            comment = str(check.get("check_result", {}).get("suppress_comment") or "").strip()
            if not comment or comment == NO_COMMENT:
                problems.append(
                    f"skipped without a reason: {check['check_id']} on {check['resource']}"
                )
        for path in results.get("parsing_errors", []):
            problems.append(f"not parsed: {path}")
    if not seen_results:
        problems.append("the report holds no results: checkov scanned nothing")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bat_backfill_tools.checkov_gate REPORT.json", file=sys.stderr)
        return 2
    try:
        report = json.loads(Path(args[0]).read_text(encoding="utf-8"))
        problems = find_problems(report)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"checkov gate: cannot read {args[0]}: {exc}", file=sys.stderr)
        return 2
    for line in problems:
        print(f"checkov gate: {line}", file=sys.stderr)
    if problems:
        return 1
    print("checkov gate: 0 failed checks; every skip has a reason")
    return 0


if __name__ == "__main__":
    sys.exit(main())
