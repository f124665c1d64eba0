"""Comments extractor Lambda: comments and bids from the listing's snapshot, stored once each."""

from bat_backfill.lambdas import make_handler

handler = make_handler("comments_extractor")
