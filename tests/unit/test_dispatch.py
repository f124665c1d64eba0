"""The dispatch plan never exceeds the configured request rate and sends 100 before 75."""

import itertools
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from bat_backfill.dispatch import SQS_MAX_DELAY_SECONDS, dispatch_budget, plan_dispatch
from bat_backfill.models import Job, JobStatus


def job(i: int, priority: int) -> Job:
    return Job(
        i, f"v{i}", f"https://bringatrailer.com/listing/x-{i}/", priority, JobStatus.PENDING, 0, 1
    )


def test_high_priority_first_on_the_high_queue():
    plan = plan_dispatch([job(1, 75), job(2, 100), job(3, 75)], request_interval_seconds=2)
    assert [(d.job.id, d.high) for d in plan] == [(2, True), (1, False), (3, False)]


@given(
    priorities=st.lists(st.sampled_from([75, 100]), max_size=400),
    interval=st.floats(min_value=0.5, max_value=30),
    first=st.integers(min_value=0, max_value=5),
)
def test_no_window_holds_more_requests_than_the_rate_allows(priorities, interval, first):
    plan = plan_dispatch(
        [job(i, p) for i, p in enumerate(priorities)],
        request_interval_seconds=interval,
        first_slot=first,
    )
    delays = sorted(d.delay_seconds for d in plan)
    assert all(0 <= d <= SQS_MAX_DELAY_SECONDS for d in delays)
    # Within any whole second SQS releases at most 1/interval messages; across seconds,
    # consecutive releases are at least one interval apart.
    per_second = Counter(delays)
    assert max(per_second.values(), default=0) <= max(1, int(1 / interval))
    if interval >= 1:
        assert all(b - a >= interval for a, b in itertools.pairwise(delays))
    assert len(plan) == len(priorities) or delays[-1] + max(1, interval) > SQS_MAX_DELAY_SECONDS
    assert [d.job.priority for d in plan] == sorted((d.job.priority for d in plan), reverse=True)


def test_budget_counts_in_flight_and_discovery_requests():
    assert (
        dispatch_budget(
            interval_seconds=600, request_interval_seconds=2, in_flight=0, other_requests=0
        )
        == 300
    )
    assert (
        dispatch_budget(
            interval_seconds=600, request_interval_seconds=2, in_flight=400, other_requests=1
        )
        == 0
    )
