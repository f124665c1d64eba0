"""The operator command says what actually happened."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from bat_backfill_tools.cli import build_parser, main

from tests.functional.support import forget_aws_configuration

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


# -- `demo --database-url` on a database that is not the demo's -----------------------------

LEGACY = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "legacy"
REAL_VEHICLE = "7d0c52a4-3f7e-4d0b-b1a5-2b9f4c1e8d10"


def everything(db) -> dict[str, object]:
    """Every row of every table and every column of the database, to prove nothing changed."""
    tables = [r[0] for r in db.run(
        "SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")]  # fmt: skip
    state: dict[str, object] = {
        "columns": db.run(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        )
    }
    for table in tables:
        state[table] = sorted(str(r[0]) for r in db.run(f"SELECT to_jsonb(t) FROM {table} t"))
    return state


def _a_real_vehicle_and_its_job(db) -> None:
    db.run("INSERT INTO vehicles (id, bat_auction_url, sale_status) "
           "VALUES (CAST(:id AS uuid), :u, 'sold')", id=REAL_VEHICLE, u=URL)  # fmt: skip
    db.run("INSERT INTO bat_extraction_queue (vehicle_id, bat_url, status) "
           "VALUES (CAST(:id AS uuid), :u, 'pending')", id=REAL_VEHICLE, u=URL)  # fmt: skip


def _an_event_of_no_vehicle(db) -> None:
    # The original table allows an event without a vehicle.
    db.run("INSERT INTO auction_events (source, source_url, outcome) VALUES ('bat', :u, 'sold')",
           u=URL)  # fmt: skip


def _a_table_of_another_program(db) -> None:
    db.run("CREATE TABLE dealer_notes (id serial PRIMARY KEY, note text)")
    db.run("INSERT INTO dealer_notes (note) VALUES ('call back on Monday')")


def _runs_of_a_real_deployment(db) -> None:
    db.run("INSERT INTO orchestrator_runs (started_at, status) VALUES (now(), 'ok')")


def _a_vehicle_with_the_demos_id_for_another_listing(db) -> None:
    from bat_backfill_tools.demo import build_samples

    sample = build_samples(1)[0]
    db.run("INSERT INTO vehicles (id, bat_auction_url) VALUES (CAST(:id AS uuid), :u)",
           id=sample.vehicle_id, u=URL)  # fmt: skip


@pytest.mark.parametrize(
    ("plant", "named"),
    [
        (_a_real_vehicle_and_its_job, REAL_VEHICLE),
        (_an_event_of_no_vehicle, "auction_events"),
        (_a_table_of_another_program, "dealer_notes"),
        (_runs_of_a_real_deployment, "orchestrator_runs"),
        (_a_vehicle_with_the_demos_id_for_another_listing, URL),
    ],
)
def test_demo_refuses_a_database_holding_data_it_did_not_write(db, db_url, capsys, plant, named):
    plant(db)
    before = everything(db)
    code, out, err = run(capsys, "demo", "--database-url", db_url, "--vehicles", "3")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "refusing" in err and named in err
    assert everything(db) == before


def test_demo_refuses_the_original_systems_database_without_adopting_it(empty_db_url, capsys):
    if not LEGACY.is_dir():
        pytest.skip("../shared/fixtures/legacy is absent")
    from bat_backfill.db.connect import connect

    db = connect(empty_db_url)
    try:
        for name in ("schema.sql", "defects.sql"):
            db.run((LEGACY / name).read_text())
        before = everything(db)
        code, out, err = run(capsys, "demo", "--database-url", empty_db_url, "--vehicles", "3")
        assert (code, out) == (2, "")
        assert err.count("\n") == 1 and "is not one of the demo's" in err
        assert everything(db) == before  # not even migrated
    finally:
        db.close()


def test_demo_runs_on_an_empty_database_and_again_on_its_own(empty_db_url, capsys, monkeypatch):
    for key in ("HIGH_QUEUE_URL", "BACKFILL_QUEUE_URL", "DLQ_URL", "SNAPSHOT_BUCKET"):
        monkeypatch.delenv(key, raising=False)
    for count in ("3", "2"):
        code, out, err = run(capsys, "demo", "--database-url", empty_db_url, "--vehicles", count,
                             "--json")  # fmt: skip
        assert code == 0, err
        assert json.loads(out.strip().splitlines()[-1])["totals"]["handled"] == int(count)


# -- options before or after the command ------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "x.toml", "--debug", "--database-url", "postgresql://h/d", "status"],
        ["status", "--config", "x.toml", "--debug", "--database-url", "postgresql://h/d"],
        ["--config", "x.toml", "status", "--debug", "--database-url", "postgresql://h/d"],
    ],
)
def test_global_options_go_before_or_after_the_command(argv):
    args = build_parser().parse_args(argv)
    assert (args.command, args.config, args.debug, args.database_url) == (
        "status",
        "x.toml",
        True,
        "postgresql://h/d",
    )


def test_global_options_default_when_absent_in_both_places():
    args = build_parser().parse_args(["status"])
    assert (args.config, args.debug, args.database_url) == (None, False, None)


@pytest.mark.parametrize("before", [True, False])
def test_config_works_before_or_after_the_command(db_url, capsys, tmp_path, before):
    config = tmp_path / "ops.toml"
    config.write_text(f'[bat-backfill]\ndatabase_url = "{db_url}"\n')
    argv = ["--config", str(config), "status"] if before else ["status", "--config", str(config)]
    code, out, err = run(capsys, *argv, "--json")
    assert (code, err) == (0, "")
    assert json.loads(out)["queue_by_priority"] == []  # read from the database the file names


@pytest.mark.parametrize("argv", [["--debug", "status"], ["status", "--debug"]])
def test_debug_adds_the_traceback_to_the_one_line(empty_db_url, capsys, argv):
    code, _, plain = run(capsys, "status", "--database-url", empty_db_url)
    assert code == 2 and plain.count("\n") == 1 and "Traceback" not in plain
    code, _, debug = run(capsys, *argv, "--database-url", empty_db_url)
    assert code == 2
    assert debug.startswith(plain) and "Traceback (most recent call last)" in debug
    # the driver's error the one line explained, not only the command's own frames
    assert "42P01" in debug


# -- AWS without a region or credentials ------------------------------------------------------

QUEUES = {
    "HIGH_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bat-backfill-high",
    "BACKFILL_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bat-backfill-backfill",
    "DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bat-backfill-dlq",
}
AWS_COMMANDS = [
    ["tick", "--no-discovery"],
    ["process"],
    ["redrive"],
    ["status"],
    ["invoke", "orchestrator", "--event", "events/orchestrator.scheduled.json"],
]


@pytest.fixture
def no_aws(monkeypatch, tmp_path):
    """Real queues configured, on a machine with no AWS configuration at all (and no network:
    the instance metadata service is never asked)."""
    forget_aws_configuration(monkeypatch, tmp_path)
    for key, value in QUEUES.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize("command", AWS_COMMANDS, ids=lambda c: c[0])
def test_no_aws_region_is_one_line_exit_2(db, db_url, capsys, no_aws, command):
    code, out, err = run(capsys, *command, "--database-url", db_url)
    assert (code, out) == (2, "")
    assert err == (
        f"bat-backfill {command[0]}: no AWS region: set AWS_DEFAULT_REGION "
        "(or region in your AWS profile)\n"
    )


@pytest.mark.parametrize("command", AWS_COMMANDS, ids=lambda c: c[0])
def test_no_aws_credentials_is_one_line_exit_2(db, db_url, capsys, no_aws, monkeypatch, command):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    code, out, err = run(capsys, *command, "--database-url", db_url)
    assert (code, out) == (2, "")
    assert err.startswith(f"bat-backfill {command[0]}: no AWS credentials: set AWS_PROFILE")
    assert err.count("\n") == 1
    assert db.run("SELECT count(*) FROM orchestrator_runs") == [[0]]  # no work was started


def test_half_a_credential_is_named_without_printing_it(db_url, capsys, no_aws, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID0001")
    code, out, err = run(capsys, "tick", "--database-url", db_url)
    assert (code, out) == (2, "")
    assert "no AWS credentials" in err and "AKIAEXAMPLE" not in err
    assert err.count("\n") == 1


# -- the demo's own Postgres cannot start ---------------------------------------------------


def test_a_demo_postgres_that_cannot_start_says_where_its_log_is(capsys, monkeypatch):
    from bat_backfill_tools.localpg import LocalPostgres, LocalPostgresError, free_port

    # The postgres system user must reach the folder (pytest's tmp_path is private to root).
    root = Path(tempfile.mkdtemp(prefix="bat-backfill-demo-")).resolve()
    os.chmod(root, 0o755)
    try:
        cluster = LocalPostgres(root=root / ".demo" / "pg", port=free_port())
        try:
            cluster.init()
        except LocalPostgresError as exc:
            pytest.skip(f"no Postgres server binaries: {exc}")
        (cluster.root / "port").write_text(str(cluster.port))
        with (cluster.data / "postgresql.conf").open("a") as conf:
            conf.write("\nshared_buffers = 'plenty'\n")  # a hand edit gone wrong
        monkeypatch.chdir(root)
        code, out, err = run(capsys, "demo", "--vehicles", "1")
        assert (code, out) == (3, "")
        assert err.count("\n") == 1 and "Traceback" not in err
        assert err.startswith("bat-backfill demo: Postgres in ")
        assert "did not start (FATAL: configuration file" in err
        assert err.rstrip().endswith(f"its log: {cluster.log}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
