"""Hostile input stays data, credentials stay secret, only BaT listings are fetched."""

from __future__ import annotations

import dataclasses
import json
from urllib.parse import urlsplit

from bat_backfill_tools.invoke import invoke_function
from bat_backfill_tools.samplepages import SampleComment, render_page

from bat_backfill.process import InProcessExtractors, process_message
from tests.functional.support import (
    FERRARI,
    FERRARI_ID,
    FERRARI_PAGE,
    add_job,
    add_vehicle,
    job_body,
    job_row,
)

HOSTILE = [
    "Robert'); DROP TABLE vehicles;--",
    'quote " and backslash \\ and $1 :name %s',
    "nul \x00 byte",
    "x" * 200_000,
]


def test_hostile_strings_in_pages_are_stored_as_plain_data(db, services, bat):
    add_vehicle(db, FERRARI_ID, FERRARI)
    job_id = add_job(db, FERRARI_ID, FERRARI)
    page = dataclasses.replace(
        FERRARI_PAGE,
        title=HOSTILE[0],
        seller="o'Brien; DELETE FROM bat_comments",
        comments=tuple(
            SampleComment(author=f"u{i}", text=text, at=1_762_000_000 + i)
            for i, text in enumerate(HOSTILE)
        ),
    )
    bat.set_listing("2001-ferrari-360-spider-89", render_page(page))
    report = process_message(services, job_body(job_id),
                             InProcessExtractors(services))  # fmt: skip
    assert report.status == "complete"
    assert job_row(db, job_id)["status"] == "complete"
    tables = {r[0] for r in db.run("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    assert {"vehicles", "bat_comments", "vehicle_audit"} <= tables
    row = db.run("SELECT listing_title, bat_seller FROM vehicles")[0]
    assert row == [HOSTILE[0], "o'Brien; DELETE FROM bat_comments"]
    bodies = {r[0] for r in db.run("SELECT body FROM bat_comments")}
    assert HOSTILE[1] in bodies and "x" * 200_000 in bodies
    assert "nul  byte" in bodies or "nul byte" in bodies  # NUL cannot live in Postgres text


def test_database_credentials_come_from_the_secret_and_are_never_logged(
    db_url, aws, bat, monkeypatch, capsys, caplog
):
    import boto3

    password = "hunter2-Very-S3cret!"
    parts = urlsplit(db_url)
    secret = {
        "host": parts.hostname,
        "port": parts.port,
        "username": "postgres",
        "password": password,
        "dbname": parts.path.lstrip("/"),
        "sslmode": "disable",
    }
    arn = boto3.client("secretsmanager").create_secret(
        Name="bat-backfill/db", SecretString=json.dumps(secret))["ARN"]  # fmt: skip
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_SECRET_ARN", arn)
    monkeypatch.setenv("DISCOVERY_ENABLED", "false")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    for key, value in aws.environment().items():
        monkeypatch.setenv(key, value)
    ok = invoke_function("orchestrator", {})
    assert ok["status"] == "ok"
    # A wrong database name: the failure is reported, the password still never appears.
    wrong = dict(secret, dbname="no_such_db")
    boto3.client("secretsmanager").put_secret_value(SecretId=arn, SecretString=json.dumps(wrong))
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    failed = invoke_function("orchestrator", {})
    assert failed["status"] == "failed"
    out, err = capsys.readouterr()
    logged = out + err + caplog.text + json.dumps(ok) + json.dumps(failed)
    assert "no_such_db" in logged
    assert password not in logged


def test_a_redirect_to_another_site_is_never_followed(db, services, bat):
    add_vehicle(db, FERRARI_ID, FERRARI)
    job_id = add_job(db, FERRARI_ID, FERRARI)
    from bat_backfill_tools.pageserver import Reply

    bat.set_listing("2001-ferrari-360-spider-89",
                    Reply(302, b"", {"Location": "https://evil.example/wp-admin/"}))  # fmt: skip
    report = process_message(services, job_body(job_id),
                             InProcessExtractors(services))  # fmt: skip
    assert report.status == "failed" and "not a BaT listing URL" in (report.error or "")
    assert list(bat.hits) == ["/listing/2001-ferrari-360-spider-89/"]
