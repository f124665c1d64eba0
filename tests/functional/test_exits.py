"""Exit codes that mean something, and dispatch that marks only what SQS accepted."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import boto3
import pytest
from bat_backfill_tools.cli import main
from bat_backfill_tools.localaws import REGION
from botocore.stub import Stubber

from bat_backfill.errors import AwsError
from bat_backfill.orchestrate import dispatch
from tests.functional.support import (
    CAYMAN,
    CAYMAN_ID,
    add_job,
    add_vehicle,
    drain,
    forget_aws_configuration,
    job_row,
)

GONE = "https://bringatrailer.com/listing/1999-gone-page-1/"
GONE_ID = "0b6f6c1e-5c1a-4f4e-9a43-3f1f6d0c9a09"


def test_version_is_printed(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("bat-backfill ")


def test_exit_codes_are_documented_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(f"  {code}  " in out for code in range(4))


def test_process_exits_0_when_every_job_completes(db, lambda_env, capsys):
    add_vehicle(db, CAYMAN_ID, CAYMAN)
    job = add_job(db, CAYMAN_ID, CAYMAN)
    assert main(["process", "--batch-size", "5"]) == 0
    assert job_row(db, job)["status"] == "complete"


def test_process_exits_1_when_a_job_failed(db, lambda_env, capsys):
    add_vehicle(db, CAYMAN_ID, CAYMAN)
    add_vehicle(db, GONE_ID, GONE)
    add_job(db, CAYMAN_ID, CAYMAN)
    gone = add_job(db, GONE_ID, GONE)
    assert main(["process", "--batch-size", "5"]) == 1
    assert job_row(db, gone)["status"] == "failed"


def test_jobs_sqs_did_not_accept_are_not_marked_dispatched(db, services):
    add_vehicle(db, CAYMAN_ID, CAYMAN)
    job = add_job(db, CAYMAN_ID, CAYMAN)
    services.settings = replace(
        services.settings, backfill_queue_url=f"{services.settings.backfill_queue_url}-gone"
    )
    with pytest.raises(Exception, match=r"QueueDoesNotExist|does not exist"):
        dispatch(services, other_requests=0)
    assert job_row(db, job)["dispatched_at"] is None


def _backfills(db, count: int) -> list[int]:
    jobs = []
    for i in range(count):
        vid = f"00000000-0000-4000-8000-{i:012d}"
        url = f"https://bringatrailer.com/listing/car-{i}/"
        add_vehicle(db, vid, url)
        jobs.append(add_job(db, vid, url, 75))
    return jobs


def _sqs_without_credentials(monkeypatch, tmp_path) -> Any:
    """A real SQS client on a machine with no AWS credentials anywhere (and no network)."""
    import boto3

    forget_aws_configuration(monkeypatch, tmp_path, region=False)
    return boto3.session.Session().client("sqs", region_name=REGION)


def _dispatched(db, jobs: list[int]) -> list[int]:
    return [j for j in jobs if job_row(db, j)["dispatched_at"] is not None]


def test_a_send_without_credentials_marks_nothing_and_the_next_run_sends_them(
    db, aws, services, monkeypatch, tmp_path
):
    jobs = _backfills(db, 3)
    working = services.sqs
    services.sqs = _sqs_without_credentials(monkeypatch, tmp_path)
    with pytest.raises(AwsError, match="no AWS credentials"):
        dispatch(services, other_requests=0)
    assert _dispatched(db, jobs) == []

    services.sqs = working
    report = dispatch(services, other_requests=0)
    assert (report["dispatched"], report["in_flight"]) == (3, 0)
    assert _dispatched(db, jobs) == jobs
    sent = drain(aws.sqs, aws.backfill_queue_url)
    assert sorted(json.loads(m["Body"])["job_id"] for m in sent) == jobs


def test_only_the_entries_sqs_accepted_are_marked_dispatched(db, aws, services):
    first, refused, third = _backfills(db, 3)
    stubbed = boto3.client("sqs", region_name=REGION)
    entry = {"MessageId": "m", "MD5OfMessageBody": "0" * 32}
    with Stubber(stubbed) as sqs:
        sqs.add_response(
            "send_message_batch",
            {
                "Successful": [{"Id": str(first), **entry}, {"Id": str(third), **entry}],
                "Failed": [{"Id": str(refused), "SenderFault": False, "Code": "InternalError"}],
            },
        )
        services.sqs = stubbed
        report = dispatch(services, other_requests=0)
        sqs.assert_no_pending_responses()
    assert (report["dispatched"], report["not_sent"]) == (2, 1)
    assert _dispatched(db, [first, refused, third]) == [first, third]

    services.sqs = aws.sqs
    assert dispatch(services, other_requests=0)["dispatched"] == 1
    assert [json.loads(m["Body"])["job_id"] for m in drain(aws.sqs, aws.backfill_queue_url)] == [
        refused
    ]


def test_a_failed_batch_keeps_the_marks_of_the_batches_sqs_took_before_it(db, services):
    jobs = _backfills(db, 12)  # two batches: ten, then two
    stubbed = boto3.client("sqs", region_name=REGION)
    entry = {"MessageId": "m", "MD5OfMessageBody": "0" * 32}
    with Stubber(stubbed) as sqs:
        sqs.add_response(
            "send_message_batch",
            {"Successful": [{"Id": str(j), **entry} for j in jobs[:10]], "Failed": []},
        )
        sqs.add_client_error("send_message_batch", "ServiceUnavailable", http_status_code=503)
        services.sqs = stubbed
        with pytest.raises(AwsError, match="ServiceUnavailable"):
            dispatch(services, other_requests=0)
    assert _dispatched(db, jobs) == jobs[:10]


def test_a_local_tick_without_queues_marks_nothing_and_process_runs_the_jobs(
    db, db_url, lambda_env, monkeypatch, capsys
):
    for key in ("HIGH_QUEUE_URL", "BACKFILL_QUEUE_URL", "DLQ_URL", "SNAPSHOT_BUCKET"):
        monkeypatch.delenv(key, raising=False)
    add_vehicle(db, CAYMAN_ID, CAYMAN)
    job = add_job(db, CAYMAN_ID, CAYMAN)
    assert main(["tick", "--no-discovery"]) == 0
    step = json.loads(capsys.readouterr().out)["steps"]["dispatch"]
    assert (step["dispatched"], step["due"]) == (0, 1)
    assert "nothing sent or marked" in step["note"]
    assert job_row(db, job)["dispatched_at"] is None
    assert main(["process"]) == 0
    assert job_row(db, job)["status"] == "complete"


def test_an_unreachable_database_exits_3_in_one_line_without_the_password(capsys):
    from bat_backfill_tools.localpg import free_port

    url = f"postgresql://app:s3cr@t@127.0.0.1:{free_port()}/bat"
    assert main(["status", "--database-url", url]) == 3
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "cannot reach Postgres" in captured.err
    assert "s3cr" not in captured.err and "Traceback" not in captured.err


def test_an_unmigrated_database_says_to_migrate(empty_db_url, capsys):
    assert main(["status", "--database-url", empty_db_url]) == 2
    err = capsys.readouterr().err
    assert "run bat-backfill migrate" in err and err.count("\n") == 1


def test_bat_unreachable_is_one_line_per_failed_step_and_exit_1(
    db, lambda_env, capsys, caplog, monkeypatch
):
    from bat_backfill_tools.localpg import free_port

    for name in ("HIGH_QUEUE_URL", "BACKFILL_QUEUE_URL", "DLQ_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BAT_BASE_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens
    monkeypatch.setenv("DISCOVERY_ENABLED", "true")
    add_vehicle(db, CAYMAN_ID, CAYMAN)
    job = add_job(db, CAYMAN_ID, CAYMAN)

    assert main(["tick"]) == 1  # the run is partial
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["status"] == "partial"
    assert [s for s, step in report["steps"].items() if not step["ok"]] == ["discover", "sweep"]
    assert "Traceback" not in out + err
    # one warning per failed step, without the exception's traceback attached
    failed = [r for r in caplog.records if "orchestrator step" in r.getMessage()]
    assert [r.getMessage() for r in failed] == [
        f"orchestrator step {step} failed: network error fetching "
        "https://bringatrailer.com/auctions/results/: ConnectError"
        for step in ("discover", "sweep")
    ]
    assert all(r.exc_info is None for r in failed)

    assert main(["process"]) == 1  # the job could not be fetched: retried later
    out, err = capsys.readouterr()
    assert json.loads(out)["by_status"] == {"retry": 1}
    assert err == f"job {job}: retry (network error fetching {CAYMAN}: ConnectError)\n"
    assert job_row(db, job)["status"] == "pending"
