-- The priority job queue (Postgres is the source of truth; SQS only carries job ids), with the
-- trigger that makes a hand-written re-queue (status = 'pending') start the job afresh.

CREATE TABLE bat_extraction_queue (
    id               bigserial PRIMARY KEY,
    vehicle_id       uuid NOT NULL UNIQUE REFERENCES vehicles (id) ON DELETE CASCADE,
    bat_url          text NOT NULL,
    priority         int NOT NULL DEFAULT 75,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'processing', 'complete', 'failed')),
    attempts         int NOT NULL DEFAULT 0,
    reason           text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    dispatched_at    timestamptz,          -- set when the orchestrator sent it to SQS
    locked_at        timestamptz,
    locked_by        text,
    lease_expires_at timestamptz,
    lease_generation bigint NOT NULL DEFAULT 0,  -- bumped by every claim and rescue: the fence
    last_error       text,
    error_kind       text CHECK (error_kind IN ('retryable', 'permanent')),
    completed_at     timestamptz
);

-- claim_next / claim_batch / select_for_dispatch walk this in order; also the seed's
-- "pending AND priority = 75 ORDER BY created_at" monitoring query.
CREATE INDEX bat_extraction_queue_pending_idx
    ON bat_extraction_queue (priority DESC, created_at, id) WHERE status = 'pending';
-- rescue_expired
CREATE INDEX bat_extraction_queue_leases_idx
    ON bat_extraction_queue (lease_expires_at) WHERE status = 'processing';
-- the selector's retry_failed reason
CREATE INDEX bat_extraction_queue_failed_due_idx
    ON bat_extraction_queue (next_attempt_at) WHERE status = 'failed';

CREATE FUNCTION bat_extraction_queue_before_update() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF NEW.status = 'pending' AND OLD.status IN ('complete', 'failed') THEN
        -- A re-queue starts over: the original system kept the attempt count, so re-queued
        -- failed rows could never be claimed again.
        NEW.attempts := 0;
        IF NEW.next_attempt_at IS NOT DISTINCT FROM OLD.next_attempt_at THEN
            NEW.next_attempt_at := now();
        END IF;
        NEW.dispatched_at := NULL;
        NEW.locked_at := NULL;
        NEW.locked_by := NULL;
        NEW.lease_expires_at := NULL;
        NEW.completed_at := NULL;
    ELSIF OLD.status = 'processing' AND NEW.status = 'pending'
          AND NEW.locked_by IS NOT DISTINCT FROM OLD.locked_by
          AND NEW.lease_expires_at IS NOT DISTINCT FROM OLD.lease_expires_at THEN
        -- A hand-written re-queue (e.g. the seed's ON CONFLICT ... SET status = 'pending') of a
        -- row a worker holds; the queue code always clears the lease when it leaves 'processing'.
        IF OLD.lease_expires_at > now() THEN
            -- The vehicle is being extracted right now: keep the live lease (no double processing).
            NEW.status := 'processing';
        ELSE
            -- An orphan: rescue it like rescue_expired does, fencing out the old holder.
            NEW.locked_at := NULL;
            NEW.locked_by := NULL;
            NEW.lease_expires_at := NULL;
            NEW.dispatched_at := NULL;
            NEW.next_attempt_at := now();
            NEW.lease_generation := OLD.lease_generation + 1;
        END IF;
    END IF;
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$fn$;

CREATE TRIGGER bat_extraction_queue_before_update
    BEFORE UPDATE ON bat_extraction_queue
    FOR EACH ROW EXECUTE FUNCTION bat_extraction_queue_before_update();
