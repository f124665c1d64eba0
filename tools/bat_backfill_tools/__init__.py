"""bat-backfill's operator command, demo and local stand-ins (Postgres, AWS, BaT); never shipped
in the Lambda layer."""
