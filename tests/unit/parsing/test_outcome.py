"""decide_outcome: which place wins, what each outcome carries, and what gets reported."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bat_backfill.models import Outcome
from bat_backfill.outcome import AuctionFacts, Claim, Place, Signal, decide_outcome

LINE, TABLE, RECORD = Place.RESULT_LINE, Place.AUCTION_TABLE, Place.SYSTEM_RECORD
STATUS, GROUP, ACCEPTED = Place.STATUS_CLASS, Place.CONTENT_GROUP, Place.RNM_ACCEPTED


def test_sold_everywhere() -> None:
    decision = decide_outcome(
        AuctionFacts(
            claims=(
                Claim(RECORD, Signal.SOLD, 137_000, "SeaMike"),
                Claim(TABLE, Signal.SOLD, 137_000, "SeaMike"),
                Claim(LINE, Signal.SOLD, 137_000),
                Claim(STATUS, Signal.SOLD),
                Claim(GROUP, Signal.ENDED),
            ),
            live_bids=(100_000, 137_000),
        )
    )
    assert decision.outcome is Outcome.SOLD
    assert (decision.sale_price, decision.high_bid, decision.buyer) == (137_000, 137_000, "SeaMike")
    assert decision.warnings == ()


def test_the_original_bug_rnm_is_never_sold() -> None:
    # A car RNM at $34,000 was once stored as sold for $437,250 (a price quoted in a comment).
    decision = decide_outcome(
        AuctionFacts(
            claims=(
                Claim(RECORD, Signal.RESERVE_NOT_MET, 34_000),
                Claim(TABLE, Signal.RESERVE_NOT_MET, 34_000),
                Claim(LINE, Signal.RESERVE_NOT_MET, 34_000),
                Claim(STATUS, Signal.RESERVE_NOT_MET),
            ),
            live_bids=(20_000, 34_000),
        )
    )
    assert (decision.outcome, decision.sale_price, decision.high_bid) == (
        Outcome.BID_TO,
        None,
        34_000,
    )


def test_table_and_records_beat_the_result_line_and_say_so() -> None:
    decision = decide_outcome(
        AuctionFacts(
            claims=(
                Claim(LINE, Signal.RESERVE_NOT_MET, 53_000),
                Claim(TABLE, Signal.SOLD, 55_000, "buyer1"),
                Claim(RECORD, Signal.SOLD, 55_000, "buyer1"),
            )
        )
    )
    assert (decision.outcome, decision.sale_price) == (Outcome.SOLD, 55_000)
    assert decision.warnings == ("result line says reserve_not_met but the outcome is sold",)


def test_system_record_beats_the_table() -> None:
    decision = decide_outcome(
        AuctionFacts(
            claims=(
                Claim(TABLE, Signal.SOLD, 40_000, "x"),
                Claim(RECORD, Signal.RESERVE_NOT_MET, 40_000),
            ),
            live_bids=(40_000,),
        )
    )
    assert (decision.outcome, decision.sale_price, decision.buyer) == (Outcome.BID_TO, None, None)
    assert any("auction table says sold" in warning for warning in decision.warnings)


def test_accepted_offer_after_reserve_not_met() -> None:
    decision = decide_outcome(
        AuctionFacts(
            claims=(
                Claim(ACCEPTED, Signal.SOLD, 24_000, "nocera76"),
                Claim(RECORD, Signal.RESERVE_NOT_MET, 23_000),
                Claim(TABLE, Signal.RESERVE_NOT_MET, 23_000),
                Claim(LINE, Signal.RESERVE_NOT_MET, 23_000),
            ),
            live_bids=(22_250, 23_000),
        )
    )
    assert decision.outcome is Outcome.SOLD
    assert (decision.sale_price, decision.high_bid, decision.buyer) == (24_000, 24_000, "nocera76")
    assert decision.warnings == (
        "auction table says reserve_not_met but the outcome is sold",
        "result line says reserve_not_met but the outcome is sold",
    )


def test_sale_price_disagreement_is_reported() -> None:
    decision = decide_outcome(
        AuctionFacts(claims=(Claim(TABLE, Signal.SOLD, 42_000), Claim(LINE, Signal.SOLD, 24_000)))
    )
    assert decision.sale_price == 42_000
    assert decision.warnings == ("sale price: result line says 24000, kept 42000",)


@pytest.mark.parametrize(
    ("claims", "bids", "count", "outcome", "high"),
    [
        ((Claim(TABLE, Signal.ENDED), Claim(STATUS, Signal.RESERVE_NOT_MET)), (), 0, Outcome.NO_SALE, None),
        ((Claim(LINE, Signal.RESERVE_NOT_MET, 0),), (), 0, Outcome.NO_SALE, None),
        ((Claim(TABLE, Signal.ENDED, 18_000),), (18_000,), 1, Outcome.BID_TO, 18_000),
        ((Claim(TABLE, Signal.LIVE, 300_000), Claim(GROUP, Signal.LIVE)), (300_000,), 1, Outcome.LIVE, 300_000),
        ((Claim(TABLE, Signal.LIVE, 0), Claim(STATUS, Signal.LIVE)), (), 0, Outcome.LIVE, None),
        ((Claim(LINE, Signal.WITHDRAWN), Claim(TABLE, Signal.ENDED, 40_000)), (40_000,), 1, Outcome.WITHDRAWN, 40_000),
        ((Claim(STATUS, Signal.WITHDRAWN), Claim(TABLE, Signal.RESERVE_NOT_MET, 9_000)), (), None, Outcome.WITHDRAWN, 9_000),
    ],
)  # fmt: skip
def test_outcomes(
    claims: tuple[Claim, ...],
    bids: tuple[int, ...],
    count: int | None,
    outcome: Outcome,
    high: int | None,
) -> None:
    decision = decide_outcome(AuctionFacts(claims=claims, live_bids=bids, bid_count=count))
    assert (decision.outcome, decision.high_bid, decision.sale_price) == (outcome, high, None)


def test_weak_places_alone_do_not_decide_a_sale() -> None:
    only_status = decide_outcome(AuctionFacts(claims=(Claim(STATUS, Signal.SOLD),)))
    assert only_status.outcome is None and only_status.warnings
    only_group = decide_outcome(AuctionFacts(claims=(Claim(GROUP, Signal.ENDED),), live_bids=(5,)))
    assert only_group.outcome is None
    assert decide_outcome(AuctionFacts()).outcome is None


def test_a_live_page_with_a_stale_closed_status_is_reported() -> None:
    decision = decide_outcome(
        AuctionFacts(claims=(Claim(TABLE, Signal.LIVE, 5_000), Claim(GROUP, Signal.ENDED)))
    )
    assert decision.outcome is Outcome.LIVE
    assert decision.warnings == ("BAT_CTX contentGroup says ended but the outcome is live",)


def test_a_canceled_bid_is_never_the_high_bid() -> None:
    decision = decide_outcome(
        AuctionFacts(
            claims=(Claim(TABLE, Signal.RESERVE_NOT_MET, 95_000),),
            live_bids=(30_000, 33_000),
            canceled_bids=(95_000,),
        )
    )
    assert (decision.outcome, decision.high_bid) == (Outcome.BID_TO, 33_000)
    assert decision.warnings


claims_strategy = st.lists(
    st.builds(
        Claim,
        st.sampled_from(list(Place)),
        st.sampled_from(list(Signal)),
        st.one_of(st.none(), st.integers(0, 10**7)),
        st.one_of(st.none(), st.text(max_size=8)),
    ),
    max_size=6,
).map(tuple)


@settings(max_examples=200, deadline=None)
@given(
    claims=claims_strategy,
    bids=st.lists(st.integers(1, 10**7), max_size=5).map(tuple),
    canceled=st.lists(st.integers(1, 10**7), max_size=2).map(tuple),
    count=st.one_of(st.none(), st.integers(0, 50)),
)
def test_decisions_are_consistent(
    claims: tuple[Claim, ...],
    bids: tuple[int, ...],
    canceled: tuple[int, ...],
    count: int | None,
) -> None:
    decision = decide_outcome(
        AuctionFacts(claims=claims, live_bids=bids, canceled_bids=canceled, bid_count=count)
    )
    records = {Place.RNM_ACCEPTED, Place.SYSTEM_RECORD, Place.AUCTION_TABLE, Place.RESULT_LINE}
    if decision.outcome is Outcome.SOLD:
        assert any(c.signal is Signal.SOLD and c.place in records for c in claims)
        assert decision.high_bid == decision.sale_price
    else:
        assert decision.sale_price is None and decision.buyer is None
    if decision.outcome is Outcome.NO_SALE:
        assert decision.high_bid is None
    if decision.outcome is not Outcome.SOLD and decision.high_bid is not None:
        assert decision.high_bid not in canceled or decision.high_bid in bids
