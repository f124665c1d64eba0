"""Render small synthetic BaT listing pages that follow the real markup, for tests and demos."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from bat_backfill.models import Outcome


class Capture(StrEnum):
    """How a page was saved: BaT's server HTML, or a browser's DOM after its scripts ran."""

    RAW = "raw"
    BROWSER = "browser"


class Layout(StrEnum):
    """Which Essentials markup the page uses."""

    CURRENT = "current"  # div.essentials with "Listing Details", BAT_VMS, gallery JSON
    LEGACY = "legacy"  # ul.listing-essentials-items, no comment or gallery JSON


@dataclass(frozen=True, slots=True)
class SampleBid:
    """One bid in the thread; a canceled bid is rendered as BaT's bat-bid-canceled item."""

    bidder: str
    amount: int
    at: int
    canceled: bool = False


@dataclass(frozen=True, slots=True)
class SampleComment:
    """One ordinary comment; `reply_to` is the index of an earlier comment of the same page."""

    author: str
    text: str
    at: int
    likes: int = 0
    reply_to: int | None = None


# Bullet names a spec can omit from "Listing Details", in BaT's conventional order.
BULLETS = ("chassis", "mileage", "engine", "transmission", "drivetrain", "paint", "upholstery")


@dataclass(frozen=True, slots=True)
class PageSpec:
    """What a synthetic listing page states; the defaults render a plausible sold Porsche.

    `price` is the sale price (sold; the accepted offer when `rnm_accepted`), the high bid
    (bid_to, withdrawn) or the current bid (live). `high_bid` is the auction's high bid when it
    differs from `price` (only after an accepted offer). `bids=None` generates five bids up to
    the auction's high bid. `exterior_color` and `interior_color` are rendered as
    "<colour> Paint" and "<interior> Upholstery" unless they already say so ("Repainted Green").
    """

    url: str = "https://bringatrailer.com/listing/2004-porsche-911-gt3-12/"
    year: int = 2004
    make: str = "Porsche"
    model: str = "911 GT3"
    title: str | None = None  # the h1; defaults to "<year> <make> <model>"
    outcome: Outcome = Outcome.SOLD
    price: int | None = 85_000
    high_bid: int | None = None
    rnm_accepted: bool = False
    currency: str = "USD"
    vin: str | None = "WP0AC2A914S692803"
    mileage: str | None = "58k Miles"
    exterior_color: str | None = "Guards Red"
    interior_color: str | None = "Black Leather"
    engine: str | None = "3.6-Liter Flat-Six"
    transmission: str | None = "Six-Speed Manual Transaxle"
    drivetrain: str | None = "RWD"  # RWD, AWD, 4WD or FWD
    drivetrain_as_bullet: bool = False  # a bullet instead of a sentence in the description
    extra_bullets: tuple[str, ...] = ("Limited-Slip Differential", "Clean Carfax Report")
    omit_bullets: frozenset[str] = frozenset()
    seller: str = "FlatSixGarage"
    buyer: str | None = "CoastRunner"
    location: str = "Boulder, Colorado 80302"
    dealer: bool = False
    lot: int = 187_654
    post_id: int = 98_765_432
    end_epoch: int = 1_767_200_000
    bids: tuple[SampleBid, ...] | None = None
    comments: tuple[SampleComment, ...] | None = None
    extra_comments: tuple[str, ...] = ()  # ordinary comments, e.g. quoting other cars' prices
    images: int | tuple[str, ...] = 6
    no_reserve: bool = False
    tmu_in_prose: bool = False
    description: tuple[str, ...] = ()  # extra paragraphs
    views: int = 5_321
    watchers: int = 412
    capture: Capture = Capture.RAW
    layout: Layout = Layout.CURRENT
    category: str = "german"


_BIDDERS = ("DriftlessDan", "Mojave_Miles", "OrangeCone", "heelToe", "Garagista77", "RedlineRae")
_COMMENTERS = ("WeekendWrench", "oilcanhenry", "Blue_Bay_Bob", "trackday_tina")
_DRIVE_BULLETS = {
    "RWD": "Rear-Wheel Drive",
    "AWD": "All-Wheel Drive",
    "4WD": "Four-Wheel Drive",
    "FWD": "Front-Wheel Drive",
}
_DRIVE_PROSE = {
    "RWD": "the rear wheels",
    "AWD": "all four wheels",
    "4WD": "all four wheels through a part-time four-wheel-drive system",
    "FWD": "the front wheels",
}


def _money(amount: int, code: str = "USD") -> str:
    return f"{code} ${amount:,}"


def _moment(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _short_date(epoch: int) -> str:
    moment = _moment(epoch)
    return f"{moment.month}/{moment.day}/{moment:%y}"


def _long_date(epoch: int) -> str:
    moment = _moment(epoch)
    return f"{moment:%B} {moment.day}, {moment.year}"


def _stats_date(epoch: int) -> str:
    moment = _moment(epoch)
    clock = f"{moment:%I:%M%p}".lstrip("0").lower()
    return f"{moment:%A, %B} {moment.day} at {clock}"


def _slug(name: str) -> str:
    return name.lower().replace(" ", "-")


def _member_link(name: str) -> str:
    href = f"https://bringatrailer.com/member/{_slug(name)}/"
    return f'<a href="{href}" target="_blank">{html.escape(name)}</a>'


def _title(spec: PageSpec) -> str:
    return spec.title or f"{spec.year} {spec.make} {spec.model}"


def _sold(spec: PageSpec) -> bool:
    """Sold at the auction itself (an accepted offer afterwards renders as reserve not met)."""
    return spec.outcome is Outcome.SOLD and not spec.rnm_accepted


def _auction_high(spec: PageSpec) -> int | None:
    return spec.high_bid if spec.high_bid is not None else spec.price


def _generated_bids(spec: PageSpec) -> tuple[SampleBid, ...]:
    top = _auction_high(spec)
    if spec.outcome is Outcome.NO_SALE or not top:
        return ()
    shares = (0.55, 0.7, 0.82, 0.91)
    bids = [
        SampleBid(_BIDDERS[i], int(top * share) // 250 * 250, spec.end_epoch - 86_400 * (5 - i))
        for i, share in enumerate(shares)
    ]
    last = spec.buyer if _sold(spec) and spec.buyer else _BIDDERS[len(shares)]
    return (*bids, SampleBid(last, top, spec.end_epoch - 300))


def _all_bids(spec: PageSpec) -> tuple[SampleBid, ...]:
    return spec.bids if spec.bids is not None else _generated_bids(spec)


def _all_comments(spec: PageSpec) -> tuple[SampleComment, ...]:
    start = spec.end_epoch - 6 * 86_400
    comments = spec.comments
    if comments is None:
        comments = (
            SampleComment(_COMMENTERS[0], "Are there records for the last clutch job?", start, 2),
            SampleComment(
                spec.seller,
                "@WeekendWrench, yes: the receipts are in the gallery.",
                start + 900,
                5,
                0,
            ),
            SampleComment(_COMMENTERS[1], "Great colour combination. Good luck!", start + 7_200, 1),
        )
    polluting = tuple(
        SampleComment(_COMMENTERS[(i + 2) % 4], text, spec.end_epoch - 3_600 * (i + 2))
        for i, text in enumerate(spec.extra_comments)
    )
    return comments + polluting


def _image_urls(spec: PageSpec) -> tuple[str, ...]:
    if isinstance(spec.images, tuple):
        return spec.images
    moment = _moment(spec.end_epoch)
    folder = f"https://bringatrailer.com/wp-content/uploads/{moment.year}/{moment.month:02d}"
    stem = _slug(f"{spec.year}-{spec.make}-{spec.model}")
    return tuple(
        f"{folder}/{stem}-{index:03d}-{spec.post_id % 100_000 + index}.jpg?fit=2048%2C1365"
        for index in range(1, spec.images + 1)
    )


def _status(spec: PageSpec) -> str:
    if _sold(spec):
        return "paid"
    # No withdrawn page has been seen; "status-withdrawn" follows the other post statuses.
    return {Outcome.LIVE: "active", Outcome.WITHDRAWN: "withdrawn"}.get(spec.outcome, "unsold")


def _ended(spec: PageSpec) -> bool:
    return spec.outcome is not Outcome.LIVE


def _date_span(spec: PageSpec, text: str, fmt: str) -> str:
    # Browser saves lose date-localize/data-timestamp once the page's scripts have run.
    if spec.capture is Capture.BROWSER:
        return f'<span data-ends="{spec.end_epoch}">{text}</span>'
    return (
        f'<span class="date-localize" data-timestamp="{spec.end_epoch}" '
        f'data-format="{fmt}">{text}</span>'
    )


def _result_line(spec: PageSpec, comment_count: int) -> str:
    pid, code = spec.post_id, spec.currency
    short = f"on {_short_date(spec.end_epoch)}"
    if spec.capture is Capture.BROWSER:
        date = f'<span class="date">{short}</span>'
    else:
        date = (
            f'<span class="date date-localize" data-timestamp="{spec.end_epoch}" '
            f'data-format="L">{short}</span>'
        )
    if spec.outcome is Outcome.LIVE:
        line = (
            f'<span data-listing-currently="{pid}"><span class="info-label">Current Bid:</span> '
            f'<strong class="info-value">{_money(spec.price or 0, code)}</strong></span>'
            '<span class="info-label">Ends in</span><strong class="info-value noborder-tiny">'
            f'<span class="listing-available-countdown" data-countdown="{pid}" '
            f'data-until="{spec.end_epoch}"></span><span class="listing-end-processing-notice">'
            "Checking for last second bids...</span></strong>"
        )
    else:
        if _sold(spec):
            words = f"Sold for <strong>{_money(spec.price or 0, code)}</strong>"
        elif spec.outcome is Outcome.WITHDRAWN:
            words = "Withdrawn"
        elif spec.outcome is Outcome.NO_SALE:
            words = "Ended"
        else:
            words = f"Bid to <strong>{_money(_auction_high(spec) or 0, code)}</strong>"
        line = (
            f'<span data-listing-currently="{pid}"></span>'
            f'<span class="info-value noborder-tiny">{words} {date}</span>'
        )
    return (
        f'<div class="listing-available-info">\n\t\t\t\t\t\t{line}'
        '<a class="comments-anchor-link" href="#comments-anchor">'
        f'<span class="comments_header_html" data-realtime_id="{pid}" '
        'data-realtime_prop="comments-updated.header_html">'
        f'<span class="info-value">{comment_count}</span><span class="info-label">Comments</span>'
        "</span></a>\t\t\t\t\t</div>"
    )


def _row(label: str, value: str, label_class: str = "", value_attrs: str = "") -> str:
    return (
        '\n\t\t\t\t<tr class="listing-stats-stat">\n'
        f'\t\t\t\t\t<td class="listing-stats-label{label_class}">{label}</td>\n'
        f'\t\t\t\t\t<td class="listing-stats-value{value_attrs}">\n\t\t\t\t\t\t{value}\n'
        "\t\t\t\t\t</td>\n\t\t\t\t</tr>\n"
    )


def _live_rows(spec: PageSpec, live_bid_count: int) -> list[str]:
    pid, current = spec.post_id, spec.price or 0
    leader = next((b.bidder for b in reversed(_all_bids(spec)) if not b.canceled), None)
    bidder = (
        f'<span data-listing-high-bidder-link="{pid}">by {_member_link(leader)}</span>'
        if leader
        else ""
    )
    moment = _moment(spec.end_epoch)
    parts = f"{moment.year}-{moment.month}-{moment.day}-{moment:%H-%M-%S}"
    return [
        _row(
            "Current Bid",
            f'<span data-listing-current="{pid}"><strong>{_money(current, spec.currency)}'
            f"</strong></span>\n\t\t\t\t\t\t{bidder}",
            " current-bid-label",
            " current-bid-value",
        ),
        _row(
            "Time Left",
            f'<span class="listing-end-time date-localize" data-auction-ends-id="{pid}" '
            f'data-auction-ends="{parts}" data-timestamp="{spec.end_epoch}">'
            f"{_long_date(spec.end_epoch)}</span>"
            '<span class="listing-end-processing-notice">Checking for last second bids...</span>',
        ),
        _row(
            "Ends On",
            f'<span data-ends="{spec.end_epoch}" data-ends-id="{pid}">'
            f"{_stats_date(spec.end_epoch)}</span>",
        ),
        _row(
            "Bids",
            str(live_bid_count),
            value_attrs=f' number-bids-value" data-listing-count="{pid}',
        ),
        _row(
            "",
            f'<span data-listing-current-bidding="{pid}" data-amount="{current}" '
            f'data-minimum="{current + 250}" data-listing-currency="{spec.currency}" '
            'data-listing-currency-symbol="$"></span>',
        ),
    ]


def _closed_rows(spec: PageSpec, live_bid_count: int) -> list[str]:
    rows: list[str] = []
    code = spec.currency
    if _sold(spec):
        buyer = (
            f'\n\t\t\t\t\t\t<span data-listing-high-bidder-link="{spec.post_id}">'
            f"\n\t\t\t\t\t\t\tby {_member_link(spec.buyer)}</span>"
            if spec.buyer
            else ""
        )
        amount = f"<span>\n\t\t\t\t\t\t\t{code} <strong>${spec.price or 0:,}</strong></span>"
        rows.append(_row("Winning Bid", amount + buyer))
    elif spec.outcome is Outcome.WITHDRAWN:
        rows.append(_row("Withdrawn", _date_span(spec, _stats_date(spec.end_epoch), "L")))
    elif spec.outcome is not Outcome.NO_SALE:
        high = _auction_high(spec) or 0
        amount = f"<span>\n\t\t\t\t\t\t\t{code} <strong>${high:,}</strong> (Reserve Not Met)</span>"
        rows.append(_row("High Bid", amount))
    if spec.outcome is not Outcome.WITHDRAWN:
        when = _date_span(spec, _stats_date(spec.end_epoch), "dddd, MMMM D [at] h:mma")
        rows.append(_row("Auction Ended", when))
    rows.append(_row("Bids", str(live_bid_count), value_attrs=" number-bids-value"))
    return rows


def _auction_box(spec: PageSpec, live_bid_count: int) -> str:
    pid = spec.post_id
    ended = _ended(spec)
    rows = _closed_rows(spec, live_bid_count) if ended else _live_rows(spec, live_bid_count)
    heading = "Auction Result" if ended else "Bid on This Listing"
    return (
        f'<div id="listing-bid-container" class="{"listing-closed" if ended else ""}" '
        f'data-listing-bid-id="{pid}" >\n'
        f'\t\t<h2 class="listing-component-heading" id="bid-actions">{heading}</h2>\n'
        f'\t\t<table class="listing-stats{" ended" if ended else " "}" id="listing-bid" '
        f'data-listing-bid-id="{pid}">\n'
        f"\t\t\t<tbody>{''.join(rows)}\t\t\t</tbody>\n\t\t</table>\n"
        f'\t\t<div id="listing-actions-stats" class="listing-actions-stats">{_stats(spec)}</div>\n'
        "\t</div>"
    )


def _stats(spec: PageSpec) -> str:
    pid = spec.post_id
    return (
        f'<div><span data-stats-id="{pid}" data-stats-item="views">{spec.views:,} views</span>'
        f'</div><div><span data-stats-id="{pid}" data-stats-item="watchers">'
        f"{spec.watchers:,} watchers</span></div>"
    )


def _paint_bullet(colour: str | None) -> str | None:
    if not colour:
        return None
    lowered = colour.lower()
    if lowered.endswith(" paint") or lowered.startswith(("repainted", "refinished")):
        return colour
    return f"{colour} Paint"


def _upholstery_bullet(interior: str | None) -> str | None:
    if not interior:
        return None
    return interior if interior.lower().endswith(" upholstery") else f"{interior} Upholstery"


def _bullets(spec: PageSpec) -> list[str]:
    chassis = None
    if spec.vin:
        search = f"https://www.google.com/search?q={spec.vin}"
        chassis = f'Chassis: <a href="{search}" target="_blank">{spec.vin}</a>'
    named = {
        "chassis": chassis,
        "mileage": spec.mileage,
        "engine": spec.engine,
        "transmission": spec.transmission,
        "drivetrain": _DRIVE_BULLETS.get(spec.drivetrain or "")
        if spec.drivetrain_as_bullet
        else None,
        "paint": _paint_bullet(spec.exterior_color),
        "upholstery": _upholstery_bullet(spec.interior_color),
    }
    chosen = [value for name in BULLETS if (value := named[name]) and name not in spec.omit_bullets]
    # Some real <li> values carry a trailing space.
    return [
        html.escape(bullet, quote=False) if "<a " not in bullet else bullet for bullet in chosen
    ] + [html.escape(extra, quote=False) + " " for extra in spec.extra_bullets]


def _essentials(spec: PageSpec) -> str:
    maps = "https://www.google.com/maps/place/" + spec.location.replace(" ", "%20")
    items = "".join(f"<li>{bullet}</li>" for bullet in _bullets(spec))
    party = "Dealer" if spec.dealer else "Private Party"
    location = html.escape(spec.location)
    if spec.layout is Layout.LEGACY:
        return (
            '<div class="listing-essentials"><h2 class="title">BaT Essentials</h2>'
            '<ul class="listing-essentials-items">'
            f"<li>Seller: {_member_link(spec.seller)}</li><li>Location: <b>{location}</b></li>"
            f"<li>Lot #{spec.lot}</li>{items}<li>{party}</li></ul></div>"
        )
    return (
        '<div class="essentials">\n\t<h2 class="title">BaT Essentials</h2>\n\n\t'
        f'<div class="item item-seller"><strong>Seller</strong>: {_member_link(spec.seller)} '
        '<a class="button button-notransform class-toggle-link poppable-link" href="#" '
        'aria-label="Subscribe to notifications from the seller" role="button">'
        '<span class="bell-icon user-subscription-icon"></span></a></div>'
        f'<strong>Location</strong>: <a href="{maps}" target="_blank">{location}</a>'
        f'<div class="item"><strong>Listing Details</strong><ul>{items}</ul></div>'
        f'<div class="item additional"><strong>Private Party or Dealer</strong>: {party}</div>'
        f'<div class="item"><strong>Lot</strong> #{spec.lot}</div></div>'
    )


def _description(spec: PageSpec) -> str:
    colour = spec.exterior_color or "its original colour"
    offered = "the selling dealer" if spec.dealer else "the seller"
    paragraphs = [
        f"This {_title(spec)} is finished in {colour} and is offered by {offered} "
        "with a clean title.",
        "The odometer shows the figure in the Listing Details"
        + (", and total mileage is unknown." if spec.tmu_in_prose else "."),
    ]
    if spec.drivetrain in _DRIVE_PROSE and not spec.drivetrain_as_bullet:
        gearbox = (spec.transmission or "gearbox").lower()
        paragraphs.append(
            f"Power is sent to {_DRIVE_PROSE[spec.drivetrain or '']} via a {gearbox}."
        )
    paragraphs.extend(spec.description)
    body = "\n".join(f"<p>{html.escape(text, quote=False)}</p>" for text in paragraphs)
    return f'<div class="post-excerpt" tabindex="0">\n{body}\n\t</div>'


def _gallery(spec: PageSpec) -> str:
    items = [
        {
            "context": spec.post_id,
            "dimensions": "2048x1365",
            "id": spec.post_id + index + 1,
            "large": {"height": 1365, "width": 2048, "url": url},
            "small": {"height": 105, "width": 155, "url": url.split("?")[0] + "?resize=155%2C105"},
            "voted": False,
            "votes": 0,
            "title": _title(spec),
        }
        for index, url in enumerate(_image_urls(spec))
    ]
    encoded = html.escape(_script_json(items), quote=True)
    return (
        '<div id="bat_listing_page_photo_gallery">\n<h2 class="listing-component-heading '
        'listing-component-heading-gallery">Photo Gallery</h2>\n'
        f'<div data-gallery-items="{encoded}" data-bind="template: {{ name: \'tmpl-gallery\' }}">'
        "</div>\n</div>"
    )


def _seller_id(spec: PageSpec) -> int:
    return spec.post_id % 1_000_000 + 7


def _thread(spec: PageSpec, box_html: str) -> list[dict[str, Any]]:
    """BAT_VMS.comments: ordinary comments, bids and BaT's closing system records, oldest first."""

    def author_id(name: str | None) -> int:
        if not name:
            return 0
        return _seller_id(spec) if name == spec.seller else 100_000 + sum(map(ord, name)) * 37

    def item(kind: str, name: str | None, text: str, at: int, **extra: Any) -> dict[str, Any]:
        shown = name or "Anonymous"
        if name == spec.seller and kind == "comment":
            shown = f"{name} (The Seller)"  # BaT marks every comment the seller writes
        return {
            "approved": "1",
            "authorId": author_id(name),
            "authorName": shown,
            "authorUrl": f"https://bringatrailer.com/member/{_slug(name)}/" if name else "",
            "dislikes": 0,
            "likes": 0,
            "likers": [],
            "post": str(spec.post_id),
            "markup": f"<p>{html.escape(text, quote=False)}</p>",
            "content": text,
            "timestamp": at,
            "type": kind,
            "bidAmount": 0,
            "commentParent": None,
            "images": [],
            "videos": [],
            **extra,
        }

    comments = _all_comments(spec)
    comment_items = [
        item("comment", comment.author, comment.text, comment.at, likes=comment.likes)
        for comment in comments
    ]
    entries = list(comment_items)
    for bid in _all_bids(spec):
        kind = "bat-bid-canceled" if bid.canceled else "bat-bid"
        text = f"{_money(bid.amount, spec.currency)} bid placed by {bid.bidder}"
        extra = {"bidAmount": bid.amount, "end_timestamp": spec.end_epoch}
        entries.append(item(kind, bid.bidder, text, bid.at, **extra))
    # The closing record carries an escaped copy of the auction box, as on BaT.
    closing = {"biddable_markup": str({"box": box_html})}
    at, code, high = spec.end_epoch + 2, spec.currency, _auction_high(spec) or 0
    if _sold(spec):
        money = _money(spec.price or 0, code)
        text = f"Sold on {_short_date(spec.end_epoch)} for {money}.00 to {spec.buyer}"
        entries.append(item("bat-bid-reserve", spec.buyer, text, at, **closing))
    elif spec.outcome in (Outcome.BID_TO, Outcome.SOLD) and high:
        text = f"Reserve not met on {_short_date(spec.end_epoch)} at {_money(high, code)}"
        entries.append(item("bat-bid-reserve", None, text, at, **closing))
    if spec.outcome is Outcome.SOLD and spec.rnm_accepted:
        day = f"{_moment(spec.end_epoch):%m/%d/%Y}"
        text = f"Sold on {day} for ${spec.price or 0:,} to {spec.buyer}"
        entries.append(item("bat-rnm-accepted", spec.buyer, text, spec.end_epoch + 21_600))
    entries.sort(key=lambda entry: int(entry["timestamp"]))
    base_id = spec.post_id // 5
    for position, entry in enumerate(entries):
        entry["id"] = base_id + position * 13 + 1
        entry["channels"] = [f"comment;item;{entry['id']}", f"comment;user;{entry['authorId']}"]
    # Replies point at the BaT id of the comment they answer.
    for comment, entry in zip(comments, comment_items, strict=True):
        if comment.reply_to is not None and 0 <= comment.reply_to < len(comments):
            entry["commentParent"] = comment_items[comment.reply_to]["id"]
    return entries


def _script_json(value: object) -> str:
    # WordPress' wp_json_encode escapes every slash, so "</" never ends a script early.
    return json.dumps(value, separators=(",", ":")).replace("/", "\\/")


def _title_state(spec: PageSpec) -> str:
    if spec.outcome is Outcome.LIVE:
        moment = _moment(spec.end_epoch)
        return f"ending {moment:%B} {moment.day}"
    if _sold(spec):
        return f"sold for ${spec.price or 0:,} on {_long_date(spec.end_epoch)}"
    return f"closed on {_long_date(spec.end_epoch)}"


def _chips(spec: PageSpec) -> str:
    chips = (
        ("Make", spec.make),
        ("Model", f"{spec.make} {spec.model.split(' ')[0]}"),
        ("Era", f"{spec.year // 10 * 10}s"),
    )
    if spec.capture is Capture.BROWSER:
        # After Knockout runs the chips are buttons with a watch bell.
        return "".join(
            '<div class="group-item-wrap"><div class="group-item"><button class="group-title">'
            f'<strong class="group-title-label">{label}</strong>{html.escape(value)}'
            '<span class="watch-bell"></span></button></div></div>'
            for label, value in chips
        )
    return "".join(
        '<div class="group-item-wrap"><div class="group-item"><a class="group-link" '
        f'href="https://bringatrailer.com/{_slug(value)}/"><strong class="group-title-label">'
        f"{label}</strong>{html.escape(value)}</a></div></div>"
        for label, value in chips
    )


def _rendered_comments(spec: PageSpec, thread: list[dict[str, Any]]) -> str:
    """The comment DOM of a browser save (raw server pages hold only Knockout templates)."""
    if spec.capture is Capture.RAW:
        return '<template id="tmpl-comment"><div class="comment"></div></template>'
    return "".join(
        f'<div class="comment comment-data {entry["type"]}" id="comment-{entry["id"]}">'
        f'<div class="comment-user">{html.escape(str(entry["authorName"]))}</div>'
        f'<div class="comment-text">{entry["markup"]}</div></div>'
        for entry in thread
    )


def _head(spec: PageSpec, og_title: str) -> str:
    browser = spec.capture is Capture.BROWSER
    group = (
        "listing-detail-page-live" if spec.outcome is Outcome.LIVE else "listing-detail-page-closed"
    )
    pusher = {
        "textSoldNoticeSoldTo": "Sold to",
        "textSoldNoticeReserveNotMetAt": "Reserve not met at",
        "textWithdraw": "This listing has been withdrawn by BaT because something during this "
        "auction was not fair for the buyer and/or the seller.",
    }
    product = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": og_title,
        # offers.price is the sale price, the RNM high bid or the current bid: never proof of sale.
        "offers": {"@type": "Offer", "priceCurrency": spec.currency, "price": spec.price or 0},
    }
    context = (
        f'var BAT_CTX = {{"contentGroup":"{group}"}};\n' if spec.layout is Layout.CURRENT else ""
    )
    links = (
        ""
        if browser
        else f'<link rel="canonical" href="{spec.url}" />\n'
        f"<link rel='shortlink' href='https://bringatrailer.com/?p={spec.post_id}' />\n"
    )
    gtm = '<script async src="https://www.googletagmanager.com/gtm.js?id=GTM-X"></script>\n'
    images = _image_urls(spec)
    hero = images[0].split("?")[0] if images else ""
    return (
        f"<head>\n<title>{html.escape(og_title)} for sale on BaT Auctions - {_title_state(spec)} "
        f"(Lot #{spec.lot:,}) |  Bring a Trailer</title>\n{gtm if browser else ''}"
        '<script type="text/javascript" id="bat-theme-js-extra">\n/* <![CDATA[ */\n'
        f"var BAT_WEBSERVICES_PUSHER = {_script_json(pusher)};\n{context}/* ]]> */\n</script>\n"
        f"{links}"
        f'<meta property="og:title" content="{html.escape(og_title)}"/>\n'
        f'<meta property="og:url" content="{spec.url}"/>\n'
        f'<meta property="og:image" content="{hero}"/>\n'
        f'<script type="application/ld+json">{json.dumps(product)}</script>\n</head>\n'
    )


def render_page(spec: PageSpec) -> str:
    """A small BaT-like listing page (a few KB) stating exactly what `spec` says."""
    title = _title(spec)
    og_title = f"No Reserve: {title}" if spec.no_reserve else title
    live_bids = sum(1 for bid in _all_bids(spec) if not bid.canceled)
    comments = _all_comments(spec)
    box = _auction_box(spec, live_bids)
    thread = _thread(spec, box)
    browser = spec.capture is Capture.BROWSER
    current = spec.layout is Layout.CURRENT
    vms = {
        "comments": thread,
        "commentOrder": "desc",
        "commentsInitialLoad": 20,
        "postAuthor": _seller_id(spec),
        "userId": 0,
    }
    noreserve = (
        '<div class="item-tag item-tag-noreserve"><span>NR</span> No Reserve</div>'
        if spec.no_reserve
        else ""
    )
    sticky_open, sticky_close = (
        ('<div style="height: 153.391px;">', "</div>") if browser else ("", "")
    )
    status = f" status-{_status(spec)}" if current else ""
    vms_script = (
        '<script type="text/javascript" id="bat-theme-viewmodels-js-extra">\n/* <![CDATA[ */\n'
        f"var BAT_VMS = {_script_json(vms)};\n/* ]]> */\n</script>\n"
        if current
        else ""
    )
    money = _money(spec.price or 0, spec.currency)
    history = (
        f"Sold by {spec.seller} to {spec.buyer} for {money}.00"
        if _sold(spec)
        else f"Listed by {spec.seller}"
    )
    return (
        ("" if browser else "<!doctype html>\n")
        + '<html lang="en-US" data-pusher="general">\n'
        + _head(spec, og_title)
        + "<body>\n"
        f'<div class="listing-intro" data-listing-intro-id="{spec.post_id}">\n'
        f'<div class="listing-intro-header">{sticky_open}<div class="listing-sticky">'
        '<div class="column-limited-width"><div class="listing-intro-top">\n'
        f'<h1 class="post-title listing-post-title">{html.escape(title)}</h1>\n'
        '<div class="item-tags"><div class="item-tag item-tag-currency ">'
        f'<span class="show-country-name">USA</span></div>{noreserve}</div>\n</div>\n'
        f'<div class="listing-available">\n{_result_line(spec, len(comments))}\n</div>'
        f"</div></div>{sticky_close}\n</div>\n"
        f'<div class="column-groups">{_chips(spec) if current else ""}</div>\n</div>\n'
        '<div class="container container-flex">\n<div class="column column-left">\n'
        f'<div class="post-{spec.post_id} bat-listing type-bat-listing{status} hentry '
        f'category-{spec.category}">\n{_description(spec)}\n'
        '<script type="text/html" id="tmpl-listing-video-gallery-viewer"></script>\n'
        f"{_gallery(spec) if current else ''}\n{box}\n"
        f'<h2 class="comments-title">{len(comments)} Comments</h2>\n'
        f'<div class="comments">{_rendered_comments(spec, thread)}</div>\n</div>\n</div>\n'
        '<div class="column column-right column-right-force column-flex-right">\n'
        f'{_essentials(spec)}\n<div class="listing-actions-stats">{_stats(spec)}</div>\n'
        f'<div class="history"><div class="items"><a class="item current" href="{spec.url}">'
        f'<div class="message"><em>{html.escape(history)}</em><br />'
        f"{_long_date(spec.end_epoch)}</div></a></div></div>\n</div>\n</div>\n"
        f"{vms_script}</body>\n</html>\n"
    )


_SPEC_FIELDS = frozenset(f.name for f in fields(PageSpec))


def spec_from_mapping(values: Mapping[str, Any]) -> PageSpec:
    """A PageSpec from plain keyword values; outcome may be a string, "rnm_accepted" included.

    >>> spec_from_mapping({"outcome": "rnm_accepted", "price": 30000}).rnm_accepted
    True
    """
    given = dict(values)
    unknown = set(given) - _SPEC_FIELDS
    if unknown:
        raise ValueError(f"unknown PageSpec fields: {sorted(unknown)}")
    outcome = given.get("outcome", Outcome.SOLD)
    if outcome == "rnm_accepted":
        given.update(outcome=Outcome.SOLD, rnm_accepted=True)
    elif not isinstance(outcome, Outcome):
        given["outcome"] = Outcome(str(outcome))
    for name in ("capture", "layout"):
        if isinstance(given.get(name), str):
            given[name] = Capture(given[name]) if name == "capture" else Layout(given[name])
    for name in ("bids", "comments", "extra_bullets", "extra_comments", "description"):
        if isinstance(given.get(name), list):
            given[name] = tuple(given[name])
    if isinstance(given.get("omit_bullets"), list | set | tuple):
        given["omit_bullets"] = frozenset(given["omit_bullets"])
    return PageSpec(**given)


def render_sample(values: Mapping[str, Any]) -> str:
    """render_page for a plain mapping of PageSpec keyword values (as a demo's config holds)."""
    return render_page(spec_from_mapping(values))


_CATALOGUE: tuple[tuple[int, str, str, str, str, str, str, str], ...] = (
    (2004, "Porsche", "911 GT3", "WP0AC2A914S692803", "3.6-Liter Flat-Six",
     "Six-Speed Manual Transaxle", "RWD", "Guards Red"),
    (2001, "Ferrari", "360 Modena", "ZFFYT53A810131577", "3.6-Liter V8",
     "Six-Speed F1 Transaxle", "RWD", "Rosso Corsa"),
    (1997, "Chevrolet", "Corvette Grand Sport", "1G1YY22G6V5104321", "5.7-Liter LT4 V8",
     "Six-Speed Manual Transmission", "RWD", "Admiral Blue"),
    (2010, "Nissan", "370Z Coupe", "JN1AR5EF5AM230411", "3.7-Liter V6",
     "Seven-Speed Automatic Transmission", "RWD", "Black"),
    (2016, "Audi", "S4 Avant", "WAUZZZ8V0GA012345", "Supercharged 3.0-Liter V6",
     "Seven-Speed S tronic Dual-Clutch Transmission", "AWD", "Daytona Gray Pearl"),
    (1992, "Toyota", "Land Cruiser", "JT3HN86RX20115432", "4.0-Liter Inline-Six",
     "Four-Speed Automatic Transmission", "4WD", "Repainted Green"),
    (1959, "Porsche", "356A Coupe", "85576", "Replacement 1.6-Liter Flat-Four",
     "Four-Speed Manual Transaxle", "RWD", "Ruby Red"),
    (2005, "Aston Martin", "DB9 Coupe", "SCFAB40214K301234", "6.0-Liter V12",
     "Six-Speed Automatic Transaxle", "RWD", "Tungsten Silver"),
)  # fmt: skip
_OUTCOMES = (Outcome.SOLD, Outcome.BID_TO, Outcome.LIVE, Outcome.SOLD, Outcome.NO_SALE)
_MILEAGES = (
    "58k Miles",
    "6k Miles",
    "123k Miles Shown on Repaired Speedometer",
    "61 Miles",
    "42k Kilometers",
)


def sample_spec(index: int) -> PageSpec:
    """A deterministic, varied PageSpec: vehicle, outcome and capture type change with `index`."""
    year, make, model, vin, engine, gearbox, drive, colour = _CATALOGUE[index % len(_CATALOGUE)]
    outcome = Outcome.WITHDRAWN if index % 11 == 10 else _OUTCOMES[index % len(_OUTCOMES)]
    accepted = outcome is Outcome.SOLD and index % 7 == 3
    price = 20_000 + (index * 7_919) % 180_000 // 250 * 250
    slug = _slug(f"{year}-{make}-{model}")
    return replace(
        PageSpec(),
        url=f"https://bringatrailer.com/listing/{slug}-{index + 1}/",
        year=year,
        make=make,
        model=model,
        vin=vin,
        engine=engine,
        transmission=gearbox,
        drivetrain=drive,
        drivetrain_as_bullet=index % 4 == 3,
        exterior_color=colour,
        outcome=outcome,
        price=None if outcome is Outcome.NO_SALE else price,
        high_bid=price - 1_000 if accepted else None,
        rnm_accepted=accepted,
        buyer=_BIDDERS[index % len(_BIDDERS)] if outcome is Outcome.SOLD else None,
        mileage=_MILEAGES[index % len(_MILEAGES)],
        lot=150_000 + index,
        post_id=90_000_000 + index * 1_013,
        end_epoch=1_767_200_000 + index * 3_600 * 7,
        no_reserve=index % 5 == 1,
        capture=Capture.BROWSER if index % 3 == 2 else Capture.RAW,
        views=1_000 + index * 37,
        watchers=100 + index * 3,
    )


# ---------------------------------------------------------------- results index pages


def index_item(
    url: str,
    *,
    sold_text: str = "",
    ended: int | None = None,
    current_bid: int | None = None,
    currency: str | None = "USD",
    active: bool = False,
    title: str | None = None,
    no_reserve: bool = False,
    item_id: int | None = None,
) -> dict[str, Any]:
    """One item of BaT's results index, with the keys its pages and listings-filter JSON use."""
    return {
        "active": active,
        "current_bid": current_bid,
        "current_bid_formatted": f"{currency} ${current_bid:,}" if current_bid else "",
        "currency": currency,
        "country_code": "US",
        "id": item_id,
        "noreserve": no_reserve,
        "premium": False,
        "sold_text": sold_text,
        "timestamp_end": ended,
        "title": title or url.rstrip("/").rsplit("/", 1)[1].replace("-", " ").title(),
        "url": url,
        "year": None,
        "views": "0 Views",
        "comments": "0",
    }


def index_data(items: list[dict[str, Any]], page: int = 1, pages_total: int = 1) -> dict[str, Any]:
    """The object BaT embeds in results pages and returns from its listings-filter endpoint."""
    return {
        "items": items,
        "items_per_page": len(items),
        "items_total": len(items) * pages_total,
        "page_current": page,
        "pages_total": pages_total,
    }


def render_results_page(
    items: list[dict[str, Any]],
    page: int = 1,
    pages_total: int = 1,
    *,
    variable: str = "auctionsCompletedInitialData",
) -> str:
    """A results, make or model page (or, with auctionsCurrentInitialData, a live board)."""
    data = json.dumps(index_data(items, page, pages_total))
    return (
        "<!doctype html><html><head><title>Auction Results | Bring a Trailer</title></head>"
        '<body><div class="auctions-container">'
        f'<script type="text/javascript" id="bat-theme-auctions-completed-initial-data">\n'
        f"/* <![CDATA[ */\nvar {variable} = {data};\n/* ]]> */\n</script></div></body></html>"
    )
