"""What an operator sees when the database refuses them: one line, what to do, never the secret.

The shared test server trusts every local connection, so these run on a cluster of their own
whose pg_hba.conf asks two roles for a password (scram-sha-256)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from bat_backfill_tools.cli import main
from bat_backfill_tools.localpg import (
    LocalPostgres,
    LocalPostgresError,
    create_database,
    discard,
    find_bindir,
    start_throwaway,
)

from bat_backfill.db.connect import connect
from bat_backfill.db.migrate import migrate

# Odd on purpose: '@' and ':' are where a URL parser and a redaction go wrong.
SECRET = "Zq7x9@kWp2:9xVmm@Rt5Lq"
ROLES = ("app", "stranger")  # `stranger` may log in but holds no grant on the tables


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalPostgres]:
    try:
        find_bindir()
    except LocalPostgresError as exc:
        pytest.skip(str(exc))
    server = start_throwaway()
    try:
        hba = server.data / "pg_hba.conf"
        rules = "".join(f"host all {role} 127.0.0.1/32 scram-sha-256\n" for role in ROLES)
        hba.write_text(rules + hba.read_text())
        admin = connect(server.url)
        try:
            admin.run("SELECT pg_reload_conf()")
            for role in ROLES:
                admin.run(f"CREATE ROLE {role} LOGIN PASSWORD '{SECRET}'")
        finally:
            admin.close()
        bat = connect(create_database(server.url, "bat"))
        try:
            migrate(bat)
            bat.run("GRANT ALL ON ALL TABLES IN SCHEMA public TO app")
            bat.run("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO app")
        finally:
            bat.close()
        yield server
    finally:
        discard(server)


def url(cluster: LocalPostgres, role: str, password: str | None, *, encoded: bool = True) -> str:
    secret = "" if password is None else ":" + (quote(password, safe="") if encoded else password)
    return f"postgresql://{role}{secret}@127.0.0.1:{cluster.port}/bat"


def status(capsys: pytest.CaptureFixture[str], database_url: str) -> tuple[int, str, str]:
    code = main(["status", "--database-url", database_url])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_without_secret(err: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in SECRET.split("@") + SECRET.split(":") + [quote(SECRET, safe="")]:
        assert fragment not in err, (fragment, err)


def test_the_right_password_with_odd_characters_connects(cluster, capsys):
    code, out, err = status(capsys, url(cluster, "app", SECRET))
    assert (code, err) == (0, "")
    assert out


def test_a_wrong_password_says_to_check_it_and_exits_2(cluster, capsys):
    code, out, err = status(capsys, url(cluster, "app", SECRET + "-wrong"))
    assert (code, out) == (2, "")
    assert "password authentication failed: check the password" in err
    assert "postgresql://app:***@127.0.0.1" in err
    assert_one_line_without_secret(err)


def test_a_password_written_raw_in_the_url_still_works_and_a_wrong_one_leaks_nothing(
    cluster, capsys
):
    # not percent-encoded: '@' and ':' inside the password, as people do write them
    code, _, err = status(capsys, url(cluster, "app", SECRET, encoded=False))
    assert (code, err) == (0, "")
    code, out, err = status(capsys, url(cluster, "app", "x" + SECRET, encoded=False))
    assert (code, out) == (2, "")
    assert "password authentication failed" in err
    assert_one_line_without_secret(err)


@pytest.mark.parametrize("odd", ["/", "?", "#"])
def test_a_raw_slash_query_or_hash_in_the_password_asks_for_encoding_and_leaks_nothing(
    cluster, capsys, odd
):
    # the host part would end inside the password: host and port would be read out of it
    code, out, err = status(capsys, url(cluster, "app", SECRET + odd + "Kp8@w", encoded=False))
    assert (code, out) == (2, "")
    assert "must be percent-encoded" in err
    assert_one_line_without_secret(err)
    assert "Kp8" not in err


def test_no_password_says_the_server_asks_for_one(cluster, capsys):
    code, out, err = status(capsys, url(cluster, "app", None))
    assert (code, out) == (2, "")
    assert "the server asks for a password and the URL has none" in err
    assert_one_line_without_secret(err)


def test_a_role_without_grants_is_told_what_is_missing(cluster, capsys):
    code, out, err = status(capsys, url(cluster, "stranger", SECRET))
    assert (code, out) == (2, "")
    assert "lacks a grant" in err and "permission denied" in err
    assert_one_line_without_secret(err)
