"""The operator command says what actually happened."""

from __future__ import annotations

import json

import pytest
from bat_backfill_tools.cli import main

URL = "https://bringatrailer.com/listing/1995-porsche-993-carrera-7/"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_queue_reports_the_priority_the_row_kept(db, db_url, capsys):
    run(capsys, "queue", URL, "--priority", "100", "--database-url", db_url)
    code, out, _ = run(capsys, "queue", URL, "--priority", "50", "--database-url", db_url)
    assert code == 0
    assert "at priority 100" in out and "never lowered" in out
    assert db.run("SELECT priority FROM bat_extraction_queue") == [[100]]


def test_queue_says_when_the_reason_was_kept(db, db_url, capsys):
    run(capsys, "queue", URL, "--reason", "first", "--database-url", db_url)
    db.run("UPDATE bat_extraction_queue SET status = 'processing', locked_by = 'w', "
           "lease_expires_at = now() + interval '10 minutes'")  # fmt: skip
    code, out, _ = run(capsys, "queue", URL, "--reason", "second", "--database-url", db_url)
    assert code == 0 and "reason kept as 'first'" in out


@pytest.mark.parametrize("count", ["0", "501", "100000"])
def test_demo_refuses_a_sample_size_out_of_bounds(db_url, capsys, count):
    code, out, err = run(capsys, "demo", "--database-url", db_url, "--vehicles", count)
    assert (code, out) == (2, "")
    assert "between 1 and 500" in err


def test_demo_stop_says_nothing_ran_when_the_database_is_down(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from bat_backfill_tools.localpg import free_port

    pg = tmp_path / ".demo" / "pg"
    (pg / "data").mkdir(parents=True)
    (pg / "port").write_text(str(free_port()))
    code, _, err = run(capsys, "demo", "--stop")
    assert code == 0 and "not running" in err and "stopped" not in err


def test_invoke_prints_only_json_on_stdout(db, db_url, capsys, monkeypatch, tmp_path):
    for key in ("HIGH_QUEUE_URL", "BACKFILL_QUEUE_URL", "DLQ_URL", "SNAPSHOT_BUCKET"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DISCOVERY_ENABLED", "false")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "BatBackfillTest")
    code, out, _ = run(
        capsys, "invoke", "orchestrator", "--event", "events/orchestrator.scheduled.json",
        "--database-url", db_url,
    )  # fmt: skip
    assert code == 0
    assert isinstance(json.loads(out), dict)
