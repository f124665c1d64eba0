"""Settings come from flags, then the environment, then a config file; bad values say the fix."""

import pytest

from bat_backfill.settings import SettingsError, load_settings


def test_defaults_match_the_design():
    s = load_settings({})
    assert (s.backfill_batch_size, s.backfill_priority, s.schedule_minutes) == (20, 75, 10)
    assert s.request_interval_seconds == 2.0
    assert s.dispatch_per_run == 300


def test_first_source_wins():
    s = load_settings({"MAX_ATTEMPTS": "3"}, {"MAX_ATTEMPTS": "9", "DISCOVERY_ENABLED": "off"})
    assert s.max_attempts == 3
    assert s.discovery_enabled is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REQUEST_INTERVAL_SECONDS": "0"}, "REQUEST_INTERVAL_SECONDS"),
        ({"DISCOVERY_ENABLED": "maybe"}, "DISCOVERY_ENABLED"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"BACKFILL_PRIORITY": "0"}, "BACKFILL_PRIORITY"),
    ],
)
def test_bad_values_name_the_setting(env, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(env)
