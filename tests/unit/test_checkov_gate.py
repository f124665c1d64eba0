"""The checkov gate fails on failed checks and on skips without a reason, on planted reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bat_backfill_tools.checkov_gate import NO_COMMENT, find_problems, main


def _check(check_id: str, resource: str, comment: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"result": "SKIPPED" if comment is not None else "FAILED"}
    if comment is not None:
        result["suppress_comment"] = comment
    return {"check_id": check_id, "resource": resource, "check_result": result}


def _report(failed: list[Any] | None = None, skipped: list[Any] | None = None) -> dict[str, Any]:
    return {
        "check_type": "cloudformation",
        "results": {
            "passed_checks": [],
            "failed_checks": failed or [],
            "skipped_checks": skipped or [],
            "parsing_errors": [],
        },
    }


def test_a_clean_report_with_explained_skips_passes() -> None:
    report = _report(skipped=[_check("CKV_AWS_18", "AWS::S3::Bucket.B", "a reason")])
    assert find_problems(report) == []


def test_a_failed_check_is_reported() -> None:
    problems = find_problems(_report(failed=[_check("CKV_AWS_27", "AWS::SQS::Queue.Q")]))
    assert problems == ["failed: CKV_AWS_27 on AWS::SQS::Queue.Q"]


@pytest.mark.parametrize("comment", [NO_COMMENT, "", "   "])
def test_a_skip_without_a_reason_is_reported(comment: str) -> None:
    problems = find_problems(_report(skipped=[_check("CKV_AWS_26", "AWS::SNS::Topic.T", comment)]))
    assert problems == ["skipped without a reason: CKV_AWS_26 on AWS::SNS::Topic.T"]


def test_a_list_of_reports_is_judged_whole() -> None:
    report = [_report(), _report(failed=[_check("CKV_AWS_21", "AWS::S3::Bucket.B")])]
    assert len(find_problems(report)) == 1


def test_a_report_without_results_fails() -> None:
    assert find_problems({"summary": {}}) != []
    assert find_problems([]) != []


def test_main_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean, dirty, broken = tmp_path / "c.json", tmp_path / "d.json", tmp_path / "b.json"
    clean.write_text(json.dumps(_report()), encoding="utf-8")
    dirty.write_text(json.dumps(_report(failed=[_check("X", "R")])), encoding="utf-8")
    broken.write_text("not json", encoding="utf-8")
    assert main([str(clean)]) == 0
    assert main([str(dirty)]) == 1
    assert main([str(broken)]) == 2
    assert main([str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert "failed: X on R" in err
    assert "Traceback" not in err
