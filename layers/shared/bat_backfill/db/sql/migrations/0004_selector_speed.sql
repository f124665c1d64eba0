-- Speed for the backfill selector of 0003, same results and order:
--   * backfill_hold is STABLE, so Postgres inlines it;
--   * the queue's UPDATE trigger is a row trigger with a WHEN: claims, dispatch marks, rescues
--     and retries that stay pending or processing run nothing and capture no transition tables;
--   * the selector cuts the ended-but-unswept holds to p_limit per reason like the unheld ones
--     and joins the vehicles only for the rows it returns;
--   * its last reason, retry_failed, reads backfill_retries (failed jobs with their vehicle's
--     created_at) in the selector's order instead of probing the vehicles of every due job.

-- STABLE, not IMMUTABLE: timestamptz + interval is only STABLE, and Postgres inlines a SQL
-- function only when its body is no more volatile than declared. Inlined, it is a CASE
-- expression in the refreshes and the queue trigger below.
CREATE OR REPLACE FUNCTION backfill_hold(p_status text, p_completed_at timestamptz,
                                         p_next_attempt_at timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE AS $fn$
    SELECT CASE p_status
        WHEN 'pending' THEN 'infinity'::timestamptz
        WHEN 'processing' THEN 'infinity'::timestamptz
        WHEN 'complete' THEN p_completed_at + interval '24 hours'
        WHEN 'failed' THEN p_next_attempt_at
    END
$fn$;

-- ------------------------------------------------------------------ failed jobs, in order

-- One row per failed job whose vehicle has a BaT URL: the selector's retry_failed reason in its
-- order (oldest vehicle first) without a vehicles lookup per due job. Derived data like
-- backfill_candidates, written only by the functions below from triggers, under the vehicle's
-- row lock; no foreign key (the queue's delete and truncate triggers clean up).
CREATE TABLE backfill_retries (
    vehicle_id         uuid PRIMARY KEY,
    vehicle_created_at timestamptz NOT NULL,
    next_attempt_at    timestamptz NOT NULL
);
-- Walked in the selector's order, skipping the jobs still cooling down (about a day's failures).
CREATE INDEX backfill_retries_order_idx ON backfill_retries (vehicle_created_at, vehicle_id);

-- Make backfill_retries agree for the given vehicles. Callers hold the vehicles' row locks.
CREATE FUNCTION refresh_backfill_retries(p_vehicle_ids uuid[]) RETURNS void
LANGUAGE plpgsql
SET jit = off
AS $fn$
BEGIN
    IF coalesce(cardinality(p_vehicle_ids), 0) = 0 THEN
        RETURN;
    END IF;
    -- A one-shot plan that sees the actual array, as in refresh_backfill_candidates.
    EXECUTE $sql$
        WITH ids AS MATERIALIZED (
            SELECT DISTINCT u.id FROM unnest($1) AS u (id)
        ), wanted AS MATERIALIZED (
            SELECT q.vehicle_id, v.created_at, q.next_attempt_at
              FROM ids
              JOIN bat_extraction_queue q ON q.vehicle_id = ids.id
              JOIN vehicles v ON v.id = q.vehicle_id
             WHERE q.status = 'failed'
               AND nullif(btrim(v.bat_auction_url), '') IS NOT NULL
        ), dropped AS (
            DELETE FROM backfill_retries r
             USING ids
             WHERE r.vehicle_id = ids.id
               AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.vehicle_id = r.vehicle_id)
        )
        INSERT INTO backfill_retries AS r (vehicle_id, vehicle_created_at, next_attempt_at)
        SELECT w.vehicle_id, w.created_at, w.next_attempt_at
          FROM wanted w
        ON CONFLICT (vehicle_id) DO UPDATE
           SET vehicle_created_at = EXCLUDED.vehicle_created_at,
               next_attempt_at = EXCLUDED.next_attempt_at
         WHERE (r.vehicle_created_at, r.next_attempt_at)
               IS DISTINCT FROM (EXCLUDED.vehicle_created_at, EXCLUDED.next_attempt_at)
    $sql$ USING p_vehicle_ids;
END
$fn$;

CREATE FUNCTION rebuild_backfill_retries() RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM backfill_retries;
    INSERT INTO backfill_retries (vehicle_id, vehicle_created_at, next_attempt_at)
    SELECT q.vehicle_id, v.created_at, q.next_attempt_at
      FROM bat_extraction_queue q
      JOIN vehicles v ON v.id = q.vehicle_id
     WHERE q.status = 'failed'
       AND nullif(btrim(v.bat_auction_url), '') IS NOT NULL;
END
$fn$;

-- Re-judge every vehicle and re-derive the failed jobs: after a TRUNCATE, or by an operator who
-- doubts the derived tables.
CREATE OR REPLACE FUNCTION rebuild_backfill_candidates() RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM backfill_candidates;
    PERFORM refresh_backfill_candidates(ARRAY(SELECT v.id FROM vehicles v));
    PERFORM rebuild_backfill_retries();
END
$fn$;

-- ------------------------------------------------------------------ triggers

-- As in 0003, plus: a vehicle whose created_at or URL changes is re-derived in backfill_retries.
CREATE OR REPLACE FUNCTION backfill_candidates_after_vehicles() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    ids uuid[];
    retry_ids uuid[];
BEGIN
    -- The statement has locked its vehicle rows already (a new row is seen by no one else).
    IF TG_OP = 'INSERT' THEN
        PERFORM refresh_backfill_candidates(ARRAY(SELECT n.id FROM new_rows n));
    ELSIF TG_OP = 'UPDATE' THEN
        -- only the columns the judgement reads; backfill_retries reads two of them
        SELECT array_agg(n.id) FILTER (
                   WHERE (n.created_at, n.bat_auction_url, n.auction_end_date, n.sale_status,
                          n.sale_price, n.high_bid, n.bat_buyer, n.vin, n.mileage, n.color,
                          n.transmission, n.drivetrain)
                         IS DISTINCT FROM
                         (o.created_at, o.bat_auction_url, o.auction_end_date, o.sale_status,
                          o.sale_price, o.high_bid, o.bat_buyer, o.vin, o.mileage, o.color,
                          o.transmission, o.drivetrain)),
               array_agg(n.id) FILTER (
                   WHERE (n.created_at, n.bat_auction_url)
                         IS DISTINCT FROM (o.created_at, o.bat_auction_url))
          INTO ids, retry_ids
          FROM new_rows n
          JOIN old_rows o ON o.id = n.id;
        PERFORM refresh_backfill_candidates(ids);
        IF retry_ids IS NOT NULL THEN
            PERFORM refresh_backfill_retries(retry_ids);
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        -- their jobs go by the foreign key's cascade, and with them their backfill_retries rows
        DELETE FROM backfill_candidates c USING old_rows o WHERE c.vehicle_id = o.id;
    ELSE
        TRUNCATE backfill_candidates;
    END IF;
    RETURN NULL;
END
$fn$;

-- A job whose hold may have changed, or that moved to another vehicle. A row trigger filtered by
-- WHEN in the executor: claims, dispatch marks, lease rescues, releases and retries that stay
-- pending or processing (held for good either way) fire nothing and capture no transition table.
-- The WHEN is a superset of "backfill_hold() changed": it knows only that pending and processing
-- hold alike, and otherwise fires when a column backfill_hold reads (status, completed_at,
-- next_attempt_at) changed; the function sets the exact hold. It does not call backfill_hold
-- itself: a WHEN is prepared for every statement, and inlining a SQL function there parses its
-- body each time. Fired at the end of the statement: NEW is the row as the statement left it.
CREATE FUNCTION backfill_candidates_after_queue_row() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    new_hold timestamptz;
    vehicle_created timestamptz;
    has_url boolean;
BEGIN
    IF NEW.vehicle_id <> OLD.vehicle_id THEN
        -- both vehicles, locked in id order like the other refreshes
        PERFORM 1 FROM vehicles v
          WHERE v.id IN (OLD.vehicle_id, NEW.vehicle_id)
          ORDER BY v.id FOR NO KEY UPDATE;
        PERFORM refresh_backfill_holds(ARRAY[OLD.vehicle_id, NEW.vehicle_id]);
        PERFORM refresh_backfill_retries(ARRAY[OLD.vehicle_id, NEW.vehicle_id]);
        RETURN NULL;
    END IF;
    -- The same vehicle row lock as the other refreshes: a candidate row being inserted for this
    -- vehicle right now is committed first, then updated here.
    SELECT v.created_at, nullif(btrim(v.bat_auction_url), '') IS NOT NULL
      INTO vehicle_created, has_url
      FROM vehicles v
     WHERE v.id = NEW.vehicle_id
       FOR NO KEY UPDATE;
    new_hold := backfill_hold(NEW.status, NEW.completed_at, NEW.next_attempt_at);
    IF new_hold <= now() THEN
        new_hold := NULL;  -- an ended hold; NULL stays NULL (no hold)
    END IF;
    UPDATE backfill_candidates c
       SET held_until = new_hold
     WHERE c.vehicle_id = NEW.vehicle_id
       AND c.held_until IS DISTINCT FROM new_hold;
    IF NEW.status = 'failed' AND has_url THEN
        INSERT INTO backfill_retries AS r (vehicle_id, vehicle_created_at, next_attempt_at)
        VALUES (NEW.vehicle_id, vehicle_created, NEW.next_attempt_at)
        ON CONFLICT (vehicle_id) DO UPDATE
           SET vehicle_created_at = EXCLUDED.vehicle_created_at,
               next_attempt_at = EXCLUDED.next_attempt_at
         WHERE (r.vehicle_created_at, r.next_attempt_at)
               IS DISTINCT FROM (EXCLUDED.vehicle_created_at, EXCLUDED.next_attempt_at);
    ELSIF OLD.status = 'failed' OR NEW.status = 'failed' THEN
        DELETE FROM backfill_retries r WHERE r.vehicle_id = NEW.vehicle_id;
    END IF;
    RETURN NULL;
END
$fn$;

DROP TRIGGER backfill_candidates_after_queue_update ON bat_extraction_queue;
CREATE TRIGGER backfill_candidates_after_queue_update
    AFTER UPDATE ON bat_extraction_queue
    FOR EACH ROW
    WHEN (OLD.vehicle_id <> NEW.vehicle_id
          OR (NOT (OLD.status IN ('pending', 'processing') AND NEW.status IN ('pending', 'processing'))
              AND (OLD.status, OLD.completed_at, OLD.next_attempt_at)
                  IS DISTINCT FROM (NEW.status, NEW.completed_at, NEW.next_attempt_at)))
    EXECUTE FUNCTION backfill_candidates_after_queue_row();

-- The queue's statement triggers now handle INSERT and DELETE only (a bulk load or a cascade is
-- one set-based pass).
CREATE OR REPLACE FUNCTION backfill_candidates_after_queue() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    ids uuid[];
    retry_ids uuid[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(n.vehicle_id), array_agg(n.vehicle_id) FILTER (WHERE n.status = 'failed')
          INTO ids, retry_ids
          FROM new_rows n;
    ELSE
        SELECT array_agg(o.vehicle_id), array_agg(o.vehicle_id) FILTER (WHERE o.status = 'failed')
          INTO ids, retry_ids
          FROM old_rows o;
    END IF;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    -- The same vehicle row lock as the other refreshes: a candidate row being inserted for this
    -- vehicle right now is committed first, then updated here.
    PERFORM 1 FROM vehicles v WHERE v.id = ANY (ids) ORDER BY v.id FOR NO KEY UPDATE;
    PERFORM refresh_backfill_holds(ids);
    IF retry_ids IS NOT NULL THEN
        PERFORM refresh_backfill_retries(retry_ids);
    END IF;
    RETURN NULL;
END
$fn$;

-- TRUNCATE fires no row or DELETE triggers.
CREATE OR REPLACE FUNCTION backfill_candidates_after_truncate() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_TABLE_NAME = 'bat_extraction_queue' THEN
        UPDATE backfill_candidates SET held_until = NULL WHERE held_until IS NOT NULL;
        DELETE FROM backfill_retries;
    ELSE
        PERFORM rebuild_backfill_candidates();
    END IF;
    RETURN NULL;
END
$fn$;

-- ------------------------------------------------------------------ the selector

-- One row per vehicle to re-extract, most important reason first: wrong sale status, missing
-- outcome (of a listing that has ended), missing critical fields, then failed jobs whose cool-down
-- has passed; oldest vehicle first within a reason. A vehicle whose job is pending or processing,
-- completed within the last 24 hours, or failed and still cooling down is not returned.
-- p_priority is accepted for the seed's signature and not used: the holds are the same for all.
CREATE OR REPLACE FUNCTION queue_bat_backfill_vehicles(p_limit int, p_priority int)
RETURNS TABLE (vehicle_id uuid, reason text, bat_url text)
LANGUAGE plpgsql STABLE
-- compiling these small queries costs more than running them
SET jit = off
AS $fn$
#variable_conflict use_column
DECLARE
    ids uuid[];
    reasons text[];
    urls text[];
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RETURN;
    END IF;
    -- Each reason is an index scan over its partial index of unheld vehicles, stopped at p_limit.
    -- A vehicle in several reasons appears in each list and DISTINCT ON keeps its most important
    -- one. This is exact: a vehicle in the final top p_limit is within the top p_limit of its own
    -- reason's list. Ended holds not swept yet come from the held_until index, cut to p_limit in
    -- the final order. Reason texts and URLs are read for the rows returned only.
    WITH picked AS MATERIALIZED (
        (SELECT 1 AS rank, c.vehicle_id, c.vehicle_created_at
           FROM backfill_candidates c
          WHERE c.wrong_status IS NOT NULL AND c.held_until IS NULL
          ORDER BY c.vehicle_created_at, c.vehicle_id
          LIMIT p_limit)
        UNION ALL
        (SELECT 2, c.vehicle_id, c.vehicle_created_at
           FROM backfill_candidates c
          WHERE c.needs_outcome AND c.held_until IS NULL
            -- a running auction has no outcome yet
            AND (c.auction_end_date IS NULL OR c.auction_end_date < now())
          ORDER BY c.vehicle_created_at, c.vehicle_id
          LIMIT p_limit)
        UNION ALL
        (SELECT 3, c.vehicle_id, c.vehicle_created_at
           FROM backfill_candidates c
          WHERE c.missing_fields IS NOT NULL AND c.held_until IS NULL
          ORDER BY c.vehicle_created_at, c.vehicle_id
          LIMIT p_limit)
    ), unswept AS (
        -- Ended holds not swept yet: few rows, unless no sweep has run for a long time. Each row
        -- states all its reasons, so its most important one is known here and one top-N sort
        -- gives the first p_limit of them in the final order (they are never in `picked`).
        SELECT r.rank, c.vehicle_id, c.vehicle_created_at
          FROM backfill_candidates c
         CROSS JOIN LATERAL (
                SELECT CASE
                    WHEN c.wrong_status IS NOT NULL THEN 1
                    WHEN c.needs_outcome
                         AND (c.auction_end_date IS NULL OR c.auction_end_date < now()) THEN 2
                    WHEN c.missing_fields IS NOT NULL THEN 3
                END AS rank) r
         WHERE c.held_until <= now()
           AND r.rank IS NOT NULL
         ORDER BY r.rank, c.vehicle_created_at, c.vehicle_id
         LIMIT p_limit
    ), best AS (
        SELECT DISTINCT ON (p.vehicle_id) p.rank, p.vehicle_id, p.vehicle_created_at
          FROM (SELECT * FROM picked UNION ALL SELECT * FROM unswept) p
         ORDER BY p.vehicle_id, p.rank
    ), chosen AS MATERIALIZED (
        SELECT b.rank, b.vehicle_id, b.vehicle_created_at
          FROM best b
         ORDER BY b.rank, b.vehicle_created_at, b.vehicle_id
         LIMIT p_limit
    )
    SELECT coalesce(array_agg(ch.vehicle_id ORDER BY ch.rank, ch.vehicle_created_at, ch.vehicle_id), '{}'),
           array_agg(CASE ch.rank
                         WHEN 1 THEN c.wrong_status
                         WHEN 2 THEN 'missing_outcome'
                         ELSE 'missing_fields: ' || c.missing_fields
                     END
                     ORDER BY ch.rank, ch.vehicle_created_at, ch.vehicle_id),
           array_agg(v.bat_auction_url ORDER BY ch.rank, ch.vehicle_created_at, ch.vehicle_id)
      INTO ids, reasons, urls
      FROM chosen ch
      JOIN backfill_candidates c ON c.vehicle_id = ch.vehicle_id
      JOIN vehicles v ON v.id = ch.vehicle_id;
    RETURN QUERY SELECT * FROM unnest(ids, reasons, urls);

    IF cardinality(ids) < p_limit THEN
        -- Every unheld vehicle with another reason is in `ids` now; the rest of the room goes to
        -- failed jobs whose cool-down has passed (their vehicle may look fine now), walked in
        -- order in backfill_retries past the ones still cooling down.
        RETURN QUERY
        SELECT r.vehicle_id, 'retry_failed'::text, v.bat_auction_url
          FROM (SELECT r.vehicle_id, r.vehicle_created_at
                  FROM backfill_retries r
                 WHERE r.next_attempt_at <= now()
                   AND r.vehicle_id <> ALL (ids)
                 ORDER BY r.vehicle_created_at, r.vehicle_id
                 LIMIT p_limit - cardinality(ids)) r
          JOIN vehicles v ON v.id = r.vehicle_id
         ORDER BY r.vehicle_created_at, r.vehicle_id;
    END IF;
END
$fn$;

-- Failed jobs that existed before this migration.
SELECT rebuild_backfill_retries();
