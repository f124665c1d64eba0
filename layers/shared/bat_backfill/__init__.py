"""bat-backfill: find, re-extract and repair Bring a Trailer vehicles without losing data."""

__version__ = "0.1.0"
