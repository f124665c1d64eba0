"""Exit codes that mean something, and dispatch that marks only what SQS accepted."""

from __future__ import annotations

from dataclasses import replace

import pytest
from bat_backfill_tools.cli import main

from bat_backfill.orchestrate import dispatch
from tests.functional.support import CAYMAN, CAYMAN_ID, add_job, add_vehicle, job_row

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
