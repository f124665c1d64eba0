"""Pure parsing of Bring a Trailer listing pages: html in, typed records out."""

from bat_backfill.parsing.comments import parse_comments
from bat_backfill.parsing.listing import parse_listing
from bat_backfill.parsing.page import ListingParseError

__all__ = ["ListingParseError", "parse_comments", "parse_listing"]
