-- The extraction job queue (bat_extraction_queue). Every query takes :now; NULL means the
-- database clock, a timestamp is for tests. Job rows are returned with the columns of models.Job.

-- name: enqueue
-- purpose: Queue a vehicle, or raise its priority and re-queue it if complete/failed; a processing row keeps its state.
INSERT INTO bat_extraction_queue AS q (vehicle_id, bat_url, priority, status, reason)
VALUES (CAST(:vehicle_id AS uuid), :bat_url, CAST(:priority AS int), 'pending', :reason)
ON CONFLICT (vehicle_id) DO UPDATE
   -- complete/failed -> pending: the BEFORE UPDATE trigger resets attempts, lease and dispatch.
   SET status = CASE WHEN q.status IN ('complete', 'failed') THEN 'pending' ELSE q.status END,
       priority = GREATEST(q.priority, EXCLUDED.priority),
       -- a waiting job whose priority rises is sent again, now to the high-priority queue (the
       -- processor claims whichever message comes first and drops the other)
       dispatched_at = CASE WHEN q.status = 'pending' AND EXCLUDED.priority > q.priority
                            THEN NULL ELSE q.dispatched_at END,
       bat_url = CASE WHEN q.status = 'processing' THEN q.bat_url ELSE EXCLUDED.bat_url END,
       reason = CASE WHEN q.status = 'processing' THEN q.reason
                     ELSE coalesce(EXCLUDED.reason, q.reason) END
RETURNING q.job_no;

-- name: claim_next
-- purpose: Lease the best due pending job (highest priority, then oldest) to a worker.
UPDATE bat_extraction_queue q
   SET status = 'processing',
       attempts = q.attempts + 1,
       attempts_carried = coalesce(q.attempts_carried, q.attempts),
       lease_generation = coalesce(q.lease_generation, 0) + 1,
       locked_at = coalesce(CAST(:now AS timestamptz), now()),
       last_attempt_at = coalesce(CAST(:now AS timestamptz), now()),
       locked_by = :worker,
       lease_expires_at = coalesce(CAST(:now AS timestamptz), now())
                          + CAST(:lease_seconds AS float8) * interval '1 second'
 WHERE q.job_no = (
        -- SKIP LOCKED: concurrent claimers each take a different row instead of queueing up
        -- behind one; the locked row is re-checked against this WHERE before it is returned.
        SELECT c.job_no
          FROM bat_extraction_queue c
         WHERE c.status = 'pending'
           AND coalesce(c.next_attempt_at, '-infinity') <= coalesce(CAST(:now AS timestamptz), now())
         ORDER BY c.priority DESC, c.created_at, c.job_no
         LIMIT 1
           FOR UPDATE SKIP LOCKED)
   AND q.status = 'pending'
RETURNING q.job_no AS id, q.vehicle_id, q.bat_url, q.priority, q.status, q.attempts - coalesce(q.attempts_carried, q.attempts) AS attempts, coalesce(q.lease_generation, 0) AS lease_generation,
          q.locked_by, q.lease_expires_at, q.reason;

-- name: claim_job
-- purpose: Lease one named job: pending (and due unless :force), or processing under an expired lease.
UPDATE bat_extraction_queue q
   SET status = 'processing',
       attempts = q.attempts + 1,
       attempts_carried = coalesce(q.attempts_carried, q.attempts),
       lease_generation = coalesce(q.lease_generation, 0) + 1,
       locked_at = coalesce(CAST(:now AS timestamptz), now()),
       last_attempt_at = coalesce(CAST(:now AS timestamptz), now()),
       locked_by = :worker,
       lease_expires_at = coalesce(CAST(:now AS timestamptz), now())
                          + CAST(:lease_seconds AS float8) * interval '1 second'
 WHERE q.job_no = (
        -- SKIP LOCKED: a duplicate SQS delivery racing the first gets nothing instead of waiting.
        SELECT c.job_no
          FROM bat_extraction_queue c
         WHERE c.job_no = CAST(:job_id AS bigint)
           AND ((c.status = 'pending'
                 AND (CAST(:force AS boolean)
                      OR coalesce(c.next_attempt_at, '-infinity') <= coalesce(CAST(:now AS timestamptz), now())))
                -- an orphan (its worker died): taking it over bumps the generation, fencing
                -- out the old holder
                OR (c.status = 'processing'
                    AND bat_lease_end(c.lease_expires_at, c.locked_at, c.updated_at)
           < coalesce(CAST(:now AS timestamptz), now())))
           FOR UPDATE SKIP LOCKED)
RETURNING q.job_no AS id, q.vehicle_id, q.bat_url, q.priority, q.status, q.attempts - coalesce(q.attempts_carried, q.attempts) AS attempts, coalesce(q.lease_generation, 0) AS lease_generation,
          q.locked_by, q.lease_expires_at, q.reason;

-- name: lock_leased_job
-- purpose: Lock the job row if this lease generation still holds it (the fence before writing vehicle data).
-- FOR UPDATE: held to the end of the caller's transaction, so no rescue or takeover can
-- slip in between this check and the caller's writes.
SELECT q.job_no
  FROM bat_extraction_queue q
 WHERE q.job_no = CAST(:job_id AS bigint)
   AND q.status = 'processing'
   AND coalesce(q.lease_generation, 0) = CAST(:lease_generation AS bigint)
   FOR UPDATE;

-- name: complete_job
-- purpose: Mark a job complete if this lease generation still holds it.
UPDATE bat_extraction_queue q
   SET status = 'complete',
       completed_at = coalesce(CAST(:now AS timestamptz), now()),
       locked_at = NULL,
       locked_by = NULL,
       lease_expires_at = NULL,
       error_message = NULL,
       error_kind = NULL
 WHERE q.job_no = CAST(:job_id AS bigint)
   AND q.status = 'processing'
   AND coalesce(q.lease_generation, 0) = CAST(:lease_generation AS bigint)
RETURNING q.job_no;

-- name: fail_job
-- purpose: Record a failed attempt if this lease generation holds the job: pending again after a delay, or failed.
UPDATE bat_extraction_queue q
   SET status = :status,
       next_attempt_at = coalesce(CAST(:now AS timestamptz), now())
                         + CAST(:delay_seconds AS float8) * interval '1 second',
       dispatched_at = NULL,
       locked_at = NULL,
       locked_by = NULL,
       lease_expires_at = NULL,
       error_message = :error,
       error_kind = :error_kind
 WHERE q.job_no = CAST(:job_id AS bigint)
   AND q.status = 'processing'
   AND coalesce(q.lease_generation, 0) = CAST(:lease_generation AS bigint)
RETURNING q.status;

-- name: rescue_expired_leases
-- purpose: Put processing jobs whose lease expired back to pending and fence out their old holders.
WITH expired AS MATERIALIZED (
    -- SKIP LOCKED: a row locked by its holder's lease check is being written right now; it is
    -- left alone (the next run sees it again if it is still expired).
    SELECT c.job_no, coalesce(c.lease_generation, 0) AS lease_generation
      FROM bat_extraction_queue c
     WHERE c.status = 'processing'
       AND bat_lease_end(c.lease_expires_at, c.locked_at, c.updated_at)
           < coalesce(CAST(:now AS timestamptz), now())
       FOR UPDATE SKIP LOCKED
)
UPDATE bat_extraction_queue q
   SET status = 'pending',
       lease_generation = coalesce(q.lease_generation, 0) + 1,
       next_attempt_at = coalesce(CAST(:now AS timestamptz), now()),
       dispatched_at = NULL,
       locked_at = NULL,
       locked_by = NULL,
       lease_expires_at = NULL
  FROM expired
 WHERE q.job_no = expired.job_no
   -- re-checked on the locked row: a job completed or re-claimed meanwhile is untouched
   AND q.status = 'processing'
   AND coalesce(q.lease_generation, 0) = expired.lease_generation
RETURNING q.job_no;

-- name: select_for_dispatch
-- purpose: The best due pending jobs not yet sent to SQS (or sent long ago); nothing is marked until SQS accepts them.
-- Run under the dispatch advisory lock, so no other dispatcher picks the same jobs meanwhile.
-- SKIP LOCKED: a row locked right now is being claimed or finished, so it is not sent.
SELECT c.job_no AS id, c.vehicle_id, c.bat_url, c.priority, c.status,
       c.attempts - coalesce(c.attempts_carried, c.attempts) AS attempts,
       coalesce(c.lease_generation, 0) AS lease_generation, c.locked_by, c.lease_expires_at,
       c.reason
  FROM bat_extraction_queue c
 WHERE c.status = 'pending'
   AND coalesce(c.next_attempt_at, '-infinity') <= coalesce(CAST(:now AS timestamptz), now())
   AND (c.dispatched_at IS NULL
        OR c.dispatched_at < coalesce(CAST(:now AS timestamptz), now())
                             - CAST(:redispatch_after_seconds AS float8) * interval '1 second')
 ORDER BY c.priority DESC, c.created_at, c.job_no
 LIMIT CAST(:limit AS int)
   FOR UPDATE SKIP LOCKED;

-- name: mark_dispatched
-- purpose: Mark jobs SQS accepted as dispatched, each only if still pending, unclaimed and unsent since it was selected.
UPDATE bat_extraction_queue q
   SET dispatched_at = coalesce(CAST(:now AS timestamptz), now())
  FROM unnest(CAST(:job_ids AS bigint[]), CAST(:lease_generations AS bigint[]),
              CAST(:priorities AS int[])) AS sent(job_no, lease_generation, priority)
 WHERE q.job_no = sent.job_no
   AND q.status = 'pending'
   -- a claim since the selection (even one already handed back) bumped the generation: that
   -- attempt's own schedule stands, not this message's
   AND coalesce(q.lease_generation, 0) = sent.lease_generation
   -- a priority raised since then must be sent again, to the high-priority queue
   AND q.priority = sent.priority
   AND (q.dispatched_at IS NULL
        OR q.dispatched_at < coalesce(CAST(:now AS timestamptz), now())
                             - CAST(:redispatch_after_seconds AS float8) * interval '1 second')
RETURNING q.job_no;

-- name: reset_for_redrive
-- purpose: Make failed or already-dispatched pending jobs pending afresh (attempts 0, due now); complete rows stay.
UPDATE bat_extraction_queue q
   SET status = 'pending',
       attempts = 0,
       attempts_carried = 0,
       next_attempt_at = coalesce(CAST(:now AS timestamptz), now()),
       dispatched_at = NULL
 WHERE q.job_no = ANY (CAST(:job_ids AS bigint[]))
   AND (q.status = 'failed' OR (q.status = 'pending' AND q.dispatched_at IS NOT NULL))
RETURNING q.job_no;

-- name: queue_depths
-- purpose: Count jobs by status and priority.
SELECT q.status, q.priority, count(*) AS count
  FROM bat_extraction_queue q
 GROUP BY q.status, q.priority
 ORDER BY q.status, q.priority DESC;

-- name: hand_back_job
-- purpose: A worker crashed on a job: back to pending, due now, the attempt counted and the error kept; SQS redelivers the same message, so dispatched_at stays.
UPDATE bat_extraction_queue q
   SET status = 'pending',
       next_attempt_at = now(),
       locked_at = NULL,
       locked_by = NULL,
       lease_expires_at = NULL,
       error_message = left(CAST(:error AS text), 2000),
       error_kind = 'retryable'
 WHERE q.job_no = CAST(:job_id AS bigint)
   AND q.status = 'processing'
   AND coalesce(q.lease_generation, 0) = CAST(:lease_generation AS bigint)
RETURNING q.job_no;

-- name: job_summary
-- purpose: One job's priority, status and reason, as an operator command reports them.
SELECT q.priority, q.status, q.reason
  FROM bat_extraction_queue q
 WHERE q.job_no = CAST(:job_id AS bigint);

-- name: held_jobs
-- purpose: Processing jobs of a job id, a vehicle and a worker (a NULL filter matches any), with the lease generation that holds each.
SELECT q.job_no AS id, q.vehicle_id, q.bat_url, q.priority, q.status,
       q.attempts - coalesce(q.attempts_carried, q.attempts) AS attempts,
       coalesce(q.lease_generation, 0) AS lease_generation, q.locked_by,
       bat_lease_end(q.lease_expires_at, q.locked_at, q.updated_at) AS lease_expires_at, q.reason
  FROM bat_extraction_queue q
 WHERE q.status = 'processing'
   AND (CAST(:job_id AS bigint) IS NULL OR q.job_no = CAST(:job_id AS bigint))
   AND (CAST(:vehicle_id AS uuid) IS NULL OR q.vehicle_id = CAST(:vehicle_id AS uuid))
   AND (CAST(:worker AS text) IS NULL OR q.locked_by = CAST(:worker AS text))
 ORDER BY q.job_no;

-- name: release_jobs
-- purpose: Put processing jobs back to pending, due now, each only while the lease generation given still holds it; the attempt is not counted.
-- No SKIP LOCKED: a row its holder has locked to write its results is waited for, and then
-- re-checked, so a job that was completed meanwhile stays complete.
WITH released AS (
    UPDATE bat_extraction_queue q
       SET status = 'pending',
           -- stopped, not failed: the attempt does not count towards max attempts
           attempts = greatest(q.attempts - 1, coalesce(q.attempts_carried, q.attempts)),
           -- a new generation fences out the old holder: its late writes are refused
           lease_generation = coalesce(q.lease_generation, 0) + 1,
           next_attempt_at = coalesce(CAST(:now AS timestamptz), now()),
           -- the holder's SQS message may be gone with it: the next run sends a new one
           dispatched_at = NULL,
           locked_at = NULL,
           locked_by = NULL,
           lease_expires_at = NULL
      FROM unnest(CAST(:job_ids AS bigint[]), CAST(:lease_generations AS bigint[]))
           AS held(job_no, lease_generation)
     WHERE q.job_no = held.job_no
       AND q.status = 'processing'
       -- a newer claim (after a rescue or a takeover) is never undone
       AND coalesce(q.lease_generation, 0) = held.lease_generation
    RETURNING q.job_no AS id, q.vehicle_id, q.bat_url, q.priority, q.status,
              q.attempts - coalesce(q.attempts_carried, q.attempts) AS attempts,
              coalesce(q.lease_generation, 0) AS lease_generation, q.locked_by,
              q.lease_expires_at, q.reason
)
-- the queue trigger keeps a row the original system's workers hold under a live lock
SELECT * FROM released WHERE status = 'pending' ORDER BY id;
