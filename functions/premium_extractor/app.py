"""Premium-auction extractor Lambda: fetch or reuse the page, snapshot it, repair the vehicle."""

from bat_backfill.lambdas import make_handler

handler = make_handler("premium_extractor")
