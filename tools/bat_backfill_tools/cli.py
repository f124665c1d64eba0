"""The `bat-backfill` operator command: migrate, parse, queue, tick, process, redrive, status..."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
import tomllib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bat_backfill.settings import SETTINGS, Settings, SettingsError, load_settings

from .invoke import FUNCTIONS, InvokeError, invoke_function

EXIT_OK = 0
EXIT_PARTIAL = 1  # some jobs failed, or a run was partial
EXIT_USAGE = 2  # bad input or configuration
EXIT_UNREACHABLE = 3  # a dependency (Postgres, AWS, BaT) cannot be reached

EXIT_CODES_HELP = """exit status:
  0  all good
  1  some jobs failed or a run was partial
  2  bad input or configuration
  3  a dependency (Postgres, AWS, BaT) cannot be reached
  130, 143  stopped by SIGINT (Ctrl-C) or SIGTERM"""

PROCESS_EXITS_HELP = """exit status:
  0  every job claimed completed (or none was due)
  1  some jobs failed or were put back for a retry
  2  bad input or configuration
  3  a dependency (Postgres, AWS, BaT) cannot be reached
  130, 143  stopped by SIGINT (Ctrl-C) or SIGTERM: the jobs it held were released first
            (pending again, due now, the attempt not counted); a second signal stops at once"""

RELEASE_EXITS_HELP = """exit status:
  0  every matching job was released, or none was processing
  1  some were not released: completed or claimed again since they were read
  2  bad input or configuration (no such job, not a vehicle id)
  3  Postgres cannot be reached"""

GLOBAL_OPTIONS_HELP = """--config, --database-url and --debug go before or after the command."""


class CommandError(Exception):
    """A clear, one-line reason the command could not run (exit status 2)."""


class UnreachableError(Exception):
    """A dependency cannot be reached (exit status 3); the message says which and where."""


class SignalStopError(KeyboardInterrupt):
    """SIGINT or SIGTERM asked the command to stop (a KeyboardInterrupt, so no `except
    Exception` swallows it); `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _server_error(exc: Exception) -> tuple[str | None, str]:
    """The SQLSTATE code and message of a pg8000 server error (it carries a dict of fields)."""
    fields = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    return fields.get("C"), str(fields.get("M", exc))


def _explain_database_error(exc: Exception) -> str:
    code, message = _server_error(exc)
    if code == "42P01":
        return f"the database is not migrated ({message}): run bat-backfill migrate"
    if code == "42501":
        return f"the database role lacks a grant ({message}): grant it access to the tables"
    return f"database error: {message}"


# ---------------------------------------------------------------- settings


def _config_values(path: str | None) -> dict[str, Any]:
    """`[bat-backfill]` table of a TOML file, keys as in the settings table (lower case)."""
    candidate = path or os.environ.get("BAT_BACKFILL_CONFIG")
    if candidate is None and Path("bat-backfill.toml").exists():
        candidate = "bat-backfill.toml"
    if candidate is None:
        return {}
    try:
        data = tomllib.loads(Path(candidate).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CommandError(f"config file {candidate}: {exc}") from None
    table = data.get("bat-backfill", data)
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in SETTINGS:
            raise CommandError(f"config file {candidate}: unknown setting {key!r}")
        out[SETTINGS[key].env] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def resolve_settings(args: argparse.Namespace) -> Settings:
    """Flags, then environment variables, then the config file."""
    flags = {}
    if getattr(args, "database_url", None):
        flags["DATABASE_URL"] = args.database_url
    try:
        return load_settings(flags, dict(os.environ), _config_values(getattr(args, "config", None)))
    except SettingsError as exc:
        raise CommandError(str(exc)) from None


def _database_url(settings: Settings) -> str:
    if not settings.database_url:
        raise CommandError(
            "no database: pass --database-url postgresql://..., set DATABASE_URL, "
            "or put database_url in bat-backfill.toml"
        )
    return settings.database_url


def _connect(settings: Settings) -> Any:
    from bat_backfill.db.connect import ConnectionFailedError, ServerError, connect, redact

    url = _database_url(settings)
    where = redact(url)
    try:
        return connect(url)
    except ServerError as exc:
        code, message = _server_error(exc)
        if code == "28P01":
            raise CommandError(
                f"{where}: password authentication failed: check the password in the URL"
            ) from None
        raise CommandError(f"cannot connect to {where}: {message}") from None
    except (ConnectionFailedError, OSError) as exc:
        reason = str(exc).split(":")[0][:200]
        raise UnreachableError(f"cannot reach Postgres at {where}: {reason}") from None
    except AttributeError:
        # pg8000 fails this way when the server asks for a password and none was given
        raise CommandError(
            f"{where}: the server asks for a password and the URL has none"
        ) from None
    except Exception as exc:
        raise CommandError(f"cannot connect to {where}: {exc}") from None


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


# ---------------------------------------------------------------- local runtime


@contextlib.contextmanager
def local_runtime(settings: Settings) -> Iterator[Settings]:
    """Real AWS when queue URLs are configured, else an emulated snapshot bucket and no queues
    (nothing would receive their messages, so the orchestrator sends and marks nothing); sets
    the environment the Lambda handlers read so `invoke` runs them unchanged."""
    from .localaws import emulated_aws, scoped_environ

    _database_url(settings)
    with scoped_environ(settings_environment(settings)):
        if settings.high_queue_url and settings.backfill_queue_url:
            check_aws()
            yield settings
            return
        with emulated_aws(queues=False):
            yield load_settings(dict(os.environ))


def settings_environment(settings: Settings) -> dict[str, str]:
    """The resolved settings as the environment variables the handlers read."""
    out: dict[str, str] = {}
    for name, setting in SETTINGS.items():
        value = getattr(settings, name)
        if value is not None:
            out[setting.env] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def check_aws() -> None:
    """One line (exit 2) before any work when AWS has no region or no credentials."""
    import boto3

    from bat_backfill.aws import check_configuration

    check_configuration(boto3.session.Session())


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM end the block with SignalStopError, so the caller can clean up
    (SIGTERM would otherwise end the process at once). Once one has arrived the usual handlers
    are back: a second signal stops the clean-up too."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise SignalStopError(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _services(settings: Settings) -> Any:
    from bat_backfill.services import build_services

    services = build_services(dict(os.environ))
    services.settings = replace(
        settings,
        high_queue_url=services.settings.high_queue_url,
        backfill_queue_url=services.settings.backfill_queue_url,
        dlq_url=services.settings.dlq_url,
        snapshot_bucket=services.settings.snapshot_bucket,
    )
    return services


# ---------------------------------------------------------------- commands


def cmd_migrate(args: argparse.Namespace) -> int:
    from bat_backfill.db.migrate import IncompatibleSchemaError, migrate, plan

    from .render import render_migration_plan

    conn = _connect(resolve_settings(args))
    if args.plan:
        found = plan(conn)
        print(render_migration_plan(found))
        return 2 if found.incompatibilities else 0
    try:
        applied = migrate(conn)
    except IncompatibleSchemaError as exc:
        raise CommandError(f"{exc}; see bat-backfill migrate --plan") from None
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def cmd_parse(args: argparse.Namespace) -> int:
    from bat_backfill.errors import JobError
    from bat_backfill.parsing import ListingParseError, parse_comments, parse_listing

    target: str = args.target
    url: str | None = None
    try:
        if target.startswith(("http://", "https://")):
            from bat_backfill.urls import parse_listing_url
            from bat_backfill.web import build_client, fetch_page

            url = parse_listing_url(target)
            settings = resolve_settings(args)
            with build_client(settings.user_agent, settings.fetch_timeout_seconds) as client:
                html = fetch_page(client, url, max_bytes=settings.max_page_bytes).html
        else:
            path = Path(target)
            if not path.is_file():
                raise CommandError(f"no such file: {target}")
            html = path.read_text(encoding="utf-8", errors="replace")
        listing = parse_listing(html, url=url)
        out = listing.to_dict()
        if args.comments:
            out["comments"] = [c.to_dict() for c in parse_comments(html)]
    except (ListingParseError, JobError) as exc:
        raise CommandError(f"{target}: {exc}") from None
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


def cmd_parse_results(args: argparse.Namespace) -> int:
    from bat_backfill.errors import JobError
    from bat_backfill.results import ResultsPageError, parse_results

    target: str = args.target
    try:
        if target.startswith(("http://", "https://")):
            from bat_backfill.urls import parse_index_url
            from bat_backfill.web import build_client, fetch_page

            url = parse_index_url(target)
            settings = resolve_settings(args)
            with build_client(settings.user_agent, settings.fetch_timeout_seconds) as client:
                text = fetch_page(
                    client, url, max_bytes=settings.max_page_bytes, check=parse_index_url
                ).html
        else:
            path = Path(target)
            if not path.is_file():
                raise CommandError(f"no such file: {target}")
            text = path.read_text(encoding="utf-8", errors="replace")
        index = parse_results(text)
    except (ResultsPageError, JobError) as exc:
        raise CommandError(f"{target}: {exc}") from None
    if args.json:
        print(json.dumps(index.to_dict(), indent=2, ensure_ascii=False))
        return 0
    from .render import render_results

    print(render_results(index))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from bat_backfill.discovery import sweep
    from bat_backfill.errors import JobError

    if args.pages is not None and args.pages < 1:
        raise CommandError("--pages must be at least 1")
    if args.start_page < 1:
        raise CommandError("--start-page must be at least 1")
    if args.model and not args.make:
        raise CommandError("--model needs --make")
    settings = resolve_settings(args)
    _database_url(settings)
    from bat_backfill.services import build_services

    services = build_services(settings_environment(settings))
    try:
        report = sweep(
            services,
            pages=args.pages,
            start_page=args.start_page,
            make=args.make,
            model=args.model,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except JobError as exc:
        raise CommandError(str(exc)) from None
    finally:
        services.close()
    _print_json(report.to_dict())
    return 0


def cmd_queue(args: argparse.Namespace) -> int:
    from bat_backfill.db import queue as jobqueue
    from bat_backfill.db import vehicles
    from bat_backfill.errors import InvalidListingUrlError
    from bat_backfill.urls import parse_listing_url

    if not 1 <= args.priority <= 1000:
        raise CommandError("--priority must be between 1 and 1000")
    conn = _connect(resolve_settings(args))
    target: str = args.target
    if target.startswith(("http://", "https://")):
        try:
            url = parse_listing_url(target)
        except InvalidListingUrlError as exc:
            raise CommandError(str(exc)) from None
        vehicle_id = vehicles.find_vehicle_by_url(conn, url) or vehicles.create_vehicle(conn, url)
    else:
        try:
            vehicle_id = str(uuid.UUID(target))
        except ValueError:
            raise CommandError(f"not a vehicle id or a BaT listing URL: {target!r}") from None
        exists, stored_url = vehicles.vehicle_listing_url(conn, vehicle_id)
        if not exists:
            raise CommandError(f"no vehicle {vehicle_id}")
        if not stored_url:
            raise CommandError(f"vehicle {vehicle_id} has no bat_auction_url")
        try:
            url = parse_listing_url(stored_url)
        except InvalidListingUrlError as exc:
            raise CommandError(f"vehicle {vehicle_id}: {exc}") from None
    job_id = jobqueue.enqueue(conn, vehicle_id, url, args.priority, args.reason)
    row = jobqueue.job_summary(conn, job_id) or {}
    priority, status, reason = row.get("priority"), row.get("status"), row.get("reason")
    line = f"queued job {job_id}: vehicle {vehicle_id} {url}, {status} at priority {priority}"
    # What actually happened, not what was asked: an existing row never loses priority, and a
    # row being processed keeps its reason.
    if priority != args.priority:
        line += f" (already queued higher; priority is never lowered, asked {args.priority})"
    if reason != args.reason:
        line += f" (reason kept as {reason!r}: the job is being processed now)"
    print(line)
    return 0


def cmd_tick(args: argparse.Namespace) -> int:
    from bat_backfill.orchestrate import run_orchestrator

    settings = resolve_settings(args)
    if args.no_discovery:
        settings = replace(settings, discovery_enabled=False)
    with local_runtime(settings):
        services = _services(settings)
        report = run_orchestrator(services)
    _print_json(report.to_dict())
    return EXIT_OK if report.status == "ok" else EXIT_PARTIAL


def cmd_process(args: argparse.Namespace) -> int:
    from bat_backfill.process import ForceRequest, build_extractors, force_process

    if not 1 <= args.batch_size <= 500:
        raise CommandError("--batch-size must be between 1 and 500")
    if args.max_attempts is not None and not 1 <= args.max_attempts <= 50:
        raise CommandError("--max-attempts must be between 1 and 50")
    request = ForceRequest(batch_size=args.batch_size, max_attempts=args.max_attempts)
    settings = resolve_settings(args)
    with local_runtime(settings):
        services = _services(settings)
        started = time.monotonic()
        try:
            with stop_on_signals():
                reports = force_process(services, build_extractors(services), request).jobs
        except KeyboardInterrupt as stopped:
            signum = stopped.signum if isinstance(stopped, SignalStopError) else signal.SIGINT
            return _release_on_stop(services, signum)
    for r in reports:
        line = f"job {r.job_id}: {r.status}"
        if r.error:
            line += f" ({r.error})"
        print(line, file=sys.stderr)
    tally: dict[str, int] = {}
    for r in reports:
        tally[r.status] = tally.get(r.status, 0) + 1
    _print_json(
        {
            "processed": len(reports),
            "by_status": tally,
            "seconds": round(time.monotonic() - started, 2),
        }
    )
    unfinished = {"retry", "failed", "error", "lease_lost"}
    return EXIT_PARTIAL if any(r.status in unfinished for r in reports) else EXIT_OK


def _release_on_stop(services: Any, signum: int) -> int:
    """`process` was stopped: its jobs go back to pending now, not when their lease ends."""
    from bat_backfill.process import release_claims

    name = signal.Signals(signum).name
    try:
        released = release_claims(services)
    except Exception as exc:
        print(
            f"bat-backfill process: stopped by {name}; could not release its jobs "
            f"({type(exc).__name__}): they are rescued when their lease ends, or run "
            f"bat-backfill release --worker {services.worker_id}",
            file=sys.stderr,
        )
        return 128 + signum
    if released:
        ids = ", ".join(str(job.id) for job in released)
        print(
            f"bat-backfill process: stopped by {name}; released job {ids}: pending again, "
            "due now, the attempt not counted",
            file=sys.stderr,
        )
    else:
        print(f"bat-backfill process: stopped by {name}; it held no job", file=sys.stderr)
    return 128 + signum


def cmd_release(args: argparse.Namespace) -> int:
    from bat_backfill.db import queue as jobqueue

    vehicle_id: str | None = None
    if args.job is not None and args.job < 1:
        raise CommandError(f"--job must be a job number (1 or more), got {args.job}")
    if args.vehicle is not None:
        try:
            vehicle_id = str(uuid.UUID(args.vehicle))
        except ValueError:
            raise CommandError(f"--vehicle: not a vehicle id: {args.vehicle!r}") from None
    if args.worker is not None and not args.worker.strip():
        raise CommandError("--worker must name a worker (the queue row's locked_by)")
    what = (
        f"job {args.job}"
        if args.job is not None
        else f"vehicle {vehicle_id}"
        if vehicle_id is not None
        else f"worker {args.worker}"
    )
    conn = _connect(resolve_settings(args))
    held = jobqueue.held_jobs(conn, job_id=args.job, vehicle_id=vehicle_id, worker=args.worker)
    if not held:
        if args.job is not None:
            summary = jobqueue.job_summary(conn, args.job)
            if summary is None:
                raise CommandError(f"no job {args.job}")
            print(f"nothing to release: job {args.job} is {summary['status']}, not processing")
        else:
            print(f"nothing to release: no processing job of {what}")
        return EXIT_OK
    released = {job.id for job in jobqueue.release(conn, held)}
    now = datetime.now(UTC)
    for job in held:
        if job.id not in released:
            print(
                f"job {job.id} not released: it was completed or claimed again since it was read",
                file=sys.stderr,
            )
            continue
        line = (
            f"released job {job.id}: vehicle {job.vehicle_id} {job.bat_url}, held by "
            f"{job.locked_by or 'an unnamed worker'} (lease generation {job.lease_generation}); "
            "pending again, due now, the attempt not counted"
        )
        if job.lease_expires_at is not None and job.lease_expires_at > now:
            left = int((job.lease_expires_at - now).total_seconds())
            line += (
                f"; its lease had {left} s left: if that worker still runs, its results are refused"
            )
        print(line)
    return EXIT_OK if len(released) == len(held) else EXIT_PARTIAL


def cmd_redrive(args: argparse.Namespace) -> int:
    from bat_backfill.redrive import redrive

    settings = resolve_settings(args)
    if not (settings.dlq_url and settings.high_queue_url and settings.backfill_queue_url):
        raise CommandError(
            "redrive needs the real queues: set DLQ_URL, HIGH_QUEUE_URL and BACKFILL_QUEUE_URL "
            "(the stack outputs)"
        )
    check_aws()
    services = _services(settings)
    _print_json(redrive(services).to_dict())
    return 0


def cmd_invoke(args: argparse.Namespace) -> int:
    function = args.function.replace("-", "_")
    if function not in FUNCTIONS:
        raise CommandError(f"unknown function {args.function!r}; one of: {', '.join(FUNCTIONS)}")
    try:
        event = json.loads(Path(args.event).read_text())
    except (OSError, ValueError) as exc:
        raise CommandError(f"event file {args.event}: {exc}") from None
    if not isinstance(event, dict):
        raise CommandError(f"event file {args.event}: must hold a JSON object")
    settings = resolve_settings(args)
    with local_runtime(settings):
        try:
            # Handlers print metric (EMF) and log lines; stdout stays the reply's JSON alone.
            with contextlib.redirect_stdout(sys.stderr):
                result = invoke_function(function, event)
        except InvokeError as exc:
            raise CommandError(str(exc)) from None
    _print_json(result)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from bat_backfill.db.monitoring import collect_status

    from .render import render_status

    settings = resolve_settings(args)
    data = collect_status(_connect(settings))
    data["dlq"] = None
    if settings.dlq_url:
        check_aws()
        import boto3

        from bat_backfill.aws import queue_depth

        data["dlq"] = queue_depth(boto3.client("sqs"), settings.dlq_url)
    if args.json:
        _print_json(data)
    else:
        print(render_status(data))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from bat_backfill.db.monitoring import vehicle_history
    from bat_backfill.db.vehicles import vehicle_listing_url

    from .render import render_history

    try:
        vehicle_id = str(uuid.UUID(args.vehicle_id))
    except ValueError:
        raise CommandError(f"not a vehicle id: {args.vehicle_id!r}") from None
    conn = _connect(resolve_settings(args))
    if not vehicle_listing_url(conn, vehicle_id)[0]:
        raise CommandError(f"no vehicle {vehicle_id}")
    rows = vehicle_history(conn, vehicle_id)
    if args.json:
        _print_json(rows)
    else:
        print(render_history(vehicle_id, rows))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)


# ---------------------------------------------------------------- parser


def add_global_options(
    parser: argparse.ArgumentParser,
    *,
    top: bool,
    db: bool = True,
    db_help: str = "postgresql:// URL (default: DATABASE_URL)",
) -> None:
    """--config, --debug and --database-url, on the main parser and on every command, so they
    work before or after the command's name. A command's copies have no default (SUPPRESS):
    otherwise its parser would overwrite a value given before the command with None."""
    absent: Any = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--config", default=absent, help="TOML settings file (default ./bat-backfill.toml)"
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="print the traceback behind an error message",
    )
    if db:
        parser.add_argument("--database-url", default=absent, help=db_help)


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("bat-backfill")
    except PackageNotFoundError:
        installed = "unknown"
    parser = argparse.ArgumentParser(
        prog="bat-backfill",
        description="Find, re-extract and repair Bring a Trailer vehicles in Postgres.\n\n"
        + GLOBAL_OPTIONS_HELP,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed}")
    add_global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str,
        help_text: str,
        *,
        db: bool = True,
        db_help: str = "postgresql:// URL (default: DATABASE_URL)",
        exits: str = EXIT_CODES_HELP,
        description: str | None = None,
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_text,
            description=description or help_text,
            epilog=exits,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_global_options(p, top=False, db=db, db_help=db_help)
        return p

    p = add(
        "migrate",
        "Create the schema, or adopt an existing database in place (idempotent; never drops, "
        "renames or retypes a column).",
    )
    p.add_argument(
        "--plan",
        action="store_true",
        help="print what would change and what cannot be adopted; change nothing",
    )
    p.set_defaults(func=cmd_migrate)

    p = add("parse", "Print the facts of a BaT listing page (file or URL) as JSON.", db=False)
    p.add_argument("target", help="a saved page, or https://bringatrailer.com/listing/<slug>/")
    p.add_argument("--comments", action="store_true", help="include comments and bids")
    p.set_defaults(func=cmd_parse)

    p = add(
        "parse-results",
        "Print the listings of a BaT results, make or model page, live board or listings-filter "
        "JSON (file or URL).",
        db=False,
    )
    p.add_argument("target", help="a saved page or JSON, or a https://bringatrailer.com index URL")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_parse_results)

    p = add("sweep", "Check stored outcomes against BaT's results index; repair, audit, queue.")
    p.add_argument("--make", help="only this make's results (BaT's make page)")
    p.add_argument("--model", help="only this model's results (with --make)")
    p.add_argument("--pages", type=int, help="index pages to read (default: all)")
    p.add_argument("--start-page", type=int, default=1, help="first index page to read")
    p.set_defaults(func=cmd_sweep)

    p = add("queue", "Queue one vehicle (by id) or listing URL for extraction.")
    p.add_argument("target", help="a vehicle UUID or a BaT listing URL")
    p.add_argument("--priority", type=int, default=75, help="100 new listing, 75 backfill")
    p.add_argument("--reason", default="manual", help="why (stored on the queue row)")
    p.set_defaults(func=cmd_queue)

    p = add("tick", "Run the orchestrator once (queue backfills, rescue, discover, dispatch).")
    p.add_argument("--no-discovery", action="store_true", help="skip reading BaT results")
    p.set_defaults(func=cmd_tick)

    p = add(
        "process",
        "Force-process due jobs now (the queue processor's direct mode).",
        description="Force-process due jobs now (the queue processor's direct mode).\n\n"
        "Stopped by Ctrl-C or SIGTERM, it puts the jobs it holds back to pending before it\n"
        "exits, instead of leaving them 'processing' until their lease ends.",
        exits=PROCESS_EXITS_HELP,
    )
    p.add_argument("--batch-size", type=int, default=10, help="jobs to claim (1-500)")
    p.add_argument("--max-attempts", type=int, help="attempts before a job is marked failed")
    p.set_defaults(func=cmd_process)

    p = add(
        "release",
        "Put 'processing' jobs back to pending now (their worker was killed).",
        description="Put 'processing' jobs back to pending now instead of when their lease\n"
        "ends (their worker was killed): due at once, the attempt not counted. A job\n"
        "claimed again since it was read is left alone, and the old holder's late results\n"
        "are refused (its lease generation is out of date).",
        exits=RELEASE_EXITS_HELP,
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--job", type=int, help="the job with this number (job_no)")
    which.add_argument("--vehicle", help="the job of this vehicle id")
    which.add_argument(
        "--worker",
        help="every job this worker holds (locked_by; bat-backfill process runs as host:pid)",
    )
    p.set_defaults(func=cmd_release)

    p = add("redrive", "Move DLQ messages back to their source queues and reset their jobs.")
    p.set_defaults(func=cmd_redrive)

    p = add("invoke", "Run a function's handler on an event file (local twin of sam local invoke).")
    p.add_argument("function", help=", ".join(FUNCTIONS))
    p.add_argument("--event", required=True, help="an events/*.json file")
    p.set_defaults(func=cmd_invoke)

    p = add("status", "Queue and run monitoring: the seed's queries as tables.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)

    p = add("history", "The audit trail of one vehicle.")
    p.add_argument("vehicle_id")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_history)

    p = add(
        "demo",
        "Repair a sample broken database end to end on this machine.",
        db_help="use this postgresql:// database (default: the demo's own Postgres under "
        ".demo/; DATABASE_URL is not read, so the demo never touches a real database by chance)",
    )
    p.add_argument("--pages", help="serve saved real pages from this folder instead")
    p.add_argument("--live", action="store_true", help="fetch from bringatrailer.com (politely)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (last line)")
    p.add_argument("--vehicles", type=int, default=36, help="sample size, 1 to 500")
    p.add_argument("--stop", action="store_true", help="stop the demo's Postgres under .demo/")
    p.set_defaults(func=cmd_demo)
    return parser


def explain_failure(exc: Exception) -> tuple[int, str] | None:
    """(exit status, one line) for an expected failure; None for a bug (its traceback shows)."""
    if isinstance(exc, CommandError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, UnreachableError):
        return EXIT_UNREACHABLE, str(exc)
    from bat_backfill.db.connect import ConnectionFailedError, ServerError
    from bat_backfill.errors import AwsError

    from .localpg import LocalPostgresError

    if isinstance(exc, ServerError):
        return EXIT_USAGE, _explain_database_error(exc)
    if isinstance(exc, ConnectionFailedError):
        return EXIT_UNREACHABLE, f"lost the database: {exc}"
    if type(exc).__module__.startswith("botocore."):
        from bat_backfill.aws import explain_aws_error

        exc = explain_aws_error(exc)
    if isinstance(exc, AwsError):
        return (EXIT_UNREACHABLE if exc.unreachable else EXIT_USAGE), str(exc)
    if isinstance(exc, LocalPostgresError):
        return EXIT_UNREACHABLE, str(exc)
    return None


def print_traceback(exc: BaseException) -> None:
    """The whole chain, including causes a one-line message hid with `raise ... from None`."""
    import traceback

    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    for item in reversed(chain):
        traceback.print_exception(type(item), item, item.__traceback__, chain=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt as stopped:
        return 128 + (stopped.signum if isinstance(stopped, SignalStopError) else signal.SIGINT)
    except Exception as exc:
        explained = explain_failure(exc)
        if explained is None:
            raise
        code, message = explained
        print(f"bat-backfill {args.command}: {message}", file=sys.stderr)
        if args.debug:
            print_traceback(exc)
        return code


if __name__ == "__main__":
    raise SystemExit(main())
