-- name: auto_queue
-- purpose: step 0 of a run, the seed's backfill selector and queuer.
SELECT queued_count, skipped_count FROM auto_queue_bat_backfills(:batch_size, :priority);

-- name: start_run
-- purpose: a run row first, so a crashed run is still visible as 'running'.
INSERT INTO orchestrator_runs (started_at, status) VALUES (now(), 'running') RETURNING id;

-- name: finish_run
-- purpose: the run's step results and the queue depths it ended with.
UPDATE orchestrator_runs
SET finished_at = now(), status = :status, steps = CAST(:steps AS jsonb),
    queue_depths = CAST(:depths AS jsonb), error = :error
WHERE id = :run_id;

-- name: recent_runs
-- purpose: the last orchestrator runs, newest first.
SELECT id, started_at, finished_at, status, steps, queue_depths, error
FROM orchestrator_runs ORDER BY started_at DESC, id DESC LIMIT :limit;

-- name: try_dispatch_lock
-- purpose: one dispatcher at a time, so two overlapping runs never double the request rate.
SELECT pg_try_advisory_lock(hashtext('bat-backfill:dispatch'));

-- name: release_dispatch_lock
-- purpose: end of the dispatch step.
SELECT pg_advisory_unlock(hashtext('bat-backfill:dispatch'));

-- name: in_flight
-- purpose: jobs sent to SQS within the last interval and not yet claimed: they use the budget.
SELECT count(*) FROM bat_extraction_queue
WHERE status = 'pending' AND dispatched_at > now() - make_interval(secs => :seconds);
