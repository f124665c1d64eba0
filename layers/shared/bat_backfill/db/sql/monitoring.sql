-- name: pending_backfills
-- purpose: the seed's monitoring query, verbatim: the next backfills waiting.
SELECT beq.*, v.year, v.make, v.model, v.bat_auction_url FROM bat_extraction_queue beq JOIN vehicles v ON v.id = beq.vehicle_id WHERE beq.status = 'pending' AND beq.priority = 75 ORDER BY beq.created_at LIMIT 50;

-- name: backfill_progress_today
-- purpose: the seed's daily progress query: today's backfills by status.
SELECT COUNT(*) FILTER (WHERE status = 'pending') AS pending,
       COUNT(*) FILTER (WHERE status = 'processing') AS processing,
       COUNT(*) FILTER (WHERE status = 'complete') AS complete,
       COUNT(*) FILTER (WHERE status = 'failed') AS failed
FROM bat_extraction_queue WHERE priority = 75 AND created_at::date = CURRENT_DATE;

-- name: queue_by_priority
-- purpose: queue depth by priority and status, highest priority first.
SELECT priority, status, count(*) AS jobs FROM bat_extraction_queue
GROUP BY priority, status ORDER BY priority DESC, status;

-- name: processing_jobs
-- purpose: the jobs being processed, with the worker holding each and when its lease ends (what bat-backfill release needs).
SELECT job_no AS id, vehicle_id::text AS vehicle_id, bat_url, locked_by,
       bat_lease_end(lease_expires_at, locked_at, updated_at) AS lease_ends
FROM bat_extraction_queue WHERE status = 'processing' ORDER BY locked_at, job_no LIMIT 20;

-- name: recent_failures
-- purpose: the newest failed jobs with their stored error.
SELECT job_no AS id, vehicle_id::text AS vehicle_id, bat_url, attempts, error_kind,
       error_message, updated_at
FROM bat_extraction_queue WHERE status = 'failed' ORDER BY updated_at DESC LIMIT 10;

-- name: vehicle_history
-- purpose: the audit trail of one vehicle, oldest first.
SELECT changed_at, field, action, old_value, new_value, source_url, snapshot_key, job_id
FROM vehicle_audit WHERE vehicle_id = CAST(:vehicle_id AS uuid)
ORDER BY changed_at, id;
