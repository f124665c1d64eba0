"""The seed document's statements for operators, verbatim: the adopted database must run them."""

# The seed's statements, verbatim; only the "..." of the VALUES list is filled in, as an
# operator would type it into psql.
SEED_QUEUE = (
    "INSERT INTO bat_extraction_queue (vehicle_id, bat_url, priority, status) "
    "VALUES ('{vehicle_id}','{url}',75,'pending') ON CONFLICT (vehicle_id) DO UPDATE "
    "SET status = 'pending', priority = GREATEST(bat_extraction_queue.priority, 75);"
)
SEED_NEXT_BACKFILLS = (
    "SELECT beq.*, v.year, v.make, v.model, v.bat_auction_url FROM bat_extraction_queue beq "
    "JOIN vehicles v ON v.id = beq.vehicle_id WHERE beq.status = 'pending' AND beq.priority = 75 "
    "ORDER BY beq.created_at LIMIT 50;"
)
SEED_PROGRESS_TODAY = (
    "SELECT COUNT(*) FILTER (WHERE status = 'pending') AS pending, "
    "COUNT(*) FILTER (WHERE status = 'processing') AS processing, "
    "COUNT(*) FILTER (WHERE status = 'complete') AS complete, "
    "COUNT(*) FILTER (WHERE status = 'failed') AS failed "
    "FROM bat_extraction_queue WHERE priority = 75 AND created_at::date = CURRENT_DATE;"
)
