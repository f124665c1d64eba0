"""Fixtures for driving the real handlers: emulated AWS, a local BaT, the Lambda environment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bat_backfill_tools import localaws
from bat_backfill_tools.pageserver import PageServer
from bat_backfill_tools.samplepages import render_page

from bat_backfill.services import Services, build_services
from tests.functional.support import CAYMAN_PAGE, FERRARI_PAGE


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[localaws.LocalAws]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", localaws.REGION)
    from moto import mock_aws

    with mock_aws():
        yield localaws.create_resources()


@pytest.fixture
def bat() -> Iterator[PageServer]:
    server = PageServer()
    server.set_listing("2001-ferrari-360-spider-89", render_page(FERRARI_PAGE))
    server.set_listing("2009-porsche-cayman-46", render_page(CAYMAN_PAGE))
    with server:
        yield server


@pytest.fixture
def lambda_env(
    monkeypatch: pytest.MonkeyPatch, db_url: str, aws: localaws.LocalAws, bat: PageServer
) -> dict[str, str]:
    """The environment the template gives the functions, pointed at local stand-ins."""
    env = {
        "DATABASE_URL": db_url,
        "BAT_BASE_URL": bat.base_url,
        "REQUEST_INTERVAL_SECONDS": "0.001",
        "DISCOVERY_ENABLED": "false",
        "POWERTOOLS_METRICS_NAMESPACE": "BatBackfillTest",
        **aws.environment(),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DATABASE_SECRET_ARN", raising=False)
    monkeypatch.delenv("PREMIUM_EXTRACTOR_FUNCTION", raising=False)
    monkeypatch.delenv("COMMENTS_EXTRACTOR_FUNCTION", raising=False)
    return env


@pytest.fixture
def services(lambda_env: dict[str, str]) -> Iterator[Services]:
    built = build_services()
    yield built
    built.close()
