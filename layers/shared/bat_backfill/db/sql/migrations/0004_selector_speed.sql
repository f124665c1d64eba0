-- Speed for the backfill selector of 0003, same results: an inlinable backfill_hold, a queue
-- trigger that costs nothing when a job's hold does not change, and a selector that joins the
-- vehicles only for the rows it returns.

-- STABLE, not IMMUTABLE: timestamptz + interval is only STABLE, and Postgres inlines a SQL
-- function only when its body is no more volatile than declared. Inlined, it is a CASE
-- expression wherever it is used (the queue trigger's WHEN, the refreshes).
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

-- A job whose hold changes (see backfill_hold: a function of status, completed_at and
-- next_attempt_at) or that moves to another vehicle. A row trigger whose WHEN filters in the
-- executor: claims (pending -> processing, both held for good), dispatch marks, lease rescues
-- and heartbeats fire nothing and capture no transition table. Fired at the end of the
-- statement, so NEW is the row as the statement left it.
CREATE FUNCTION backfill_candidates_after_queue_row() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    new_hold timestamptz;
BEGIN
    IF NEW.vehicle_id <> OLD.vehicle_id THEN
        -- both vehicles, locked in id order like the other refreshes
        PERFORM 1 FROM vehicles v
          WHERE v.id IN (OLD.vehicle_id, NEW.vehicle_id)
          ORDER BY v.id FOR NO KEY UPDATE;
        PERFORM refresh_backfill_holds(ARRAY[OLD.vehicle_id, NEW.vehicle_id]);
        RETURN NULL;
    END IF;
    -- The same vehicle row lock as the other refreshes: a candidate row being inserted for this
    -- vehicle right now is committed first, then updated here.
    PERFORM 1 FROM vehicles v WHERE v.id = NEW.vehicle_id FOR NO KEY UPDATE;
    new_hold := backfill_hold(NEW.status, NEW.completed_at, NEW.next_attempt_at);
    IF NOT new_hold > now() THEN
        new_hold := NULL;  -- an ended hold (or none)
    END IF;
    UPDATE backfill_candidates c
       SET held_until = new_hold
     WHERE c.vehicle_id = NEW.vehicle_id
       AND c.held_until IS DISTINCT FROM new_hold;
    RETURN NULL;
END
$fn$;

DROP TRIGGER backfill_candidates_after_queue_update ON bat_extraction_queue;
CREATE TRIGGER backfill_candidates_after_queue_update
    AFTER UPDATE ON bat_extraction_queue
    FOR EACH ROW
    WHEN (OLD.vehicle_id IS DISTINCT FROM NEW.vehicle_id
          OR backfill_hold(OLD.status, OLD.completed_at, OLD.next_attempt_at)
             IS DISTINCT FROM backfill_hold(NEW.status, NEW.completed_at, NEW.next_attempt_at))
    EXECUTE FUNCTION backfill_candidates_after_queue_row();

-- The statement triggers on the queue now only handle INSERT and DELETE (a bulk load or a
-- cascade is one set-based pass).
CREATE OR REPLACE FUNCTION backfill_candidates_after_queue() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    ids uuid[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        ids := ARRAY(SELECT n.vehicle_id FROM new_rows n);
    ELSE
        ids := ARRAY(SELECT o.vehicle_id FROM old_rows o);
    END IF;
    IF cardinality(ids) = 0 THEN
        RETURN NULL;
    END IF;
    -- The same vehicle row lock as the other refreshes: a candidate row being inserted for this
    -- vehicle right now is committed first, then updated here.
    PERFORM 1 FROM vehicles v WHERE v.id = ANY (ids) ORDER BY v.id FOR NO KEY UPDATE;
    PERFORM refresh_backfill_holds(ids);
    RETURN NULL;
END
$fn$;

-- Same results and order as 0003's. Changed: ended holds not swept yet are read once and cut to
-- p_limit per reason like the unheld ones, and the vehicles are joined only for the p_limit rows
-- returned (0003 sorted every unswept row and probed the vehicles for each of them).
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
    -- Each reason is an index scan over its partial index of unheld vehicles, stopped at p_limit,
    -- plus the first p_limit of its vehicles whose hold has ended but is not swept yet. A vehicle
    -- in several reasons appears in each list and DISTINCT ON keeps its most important one. This
    -- is exact: a vehicle in the final top p_limit is within the top p_limit of its own reason's
    -- list, and so within the top p_limit of the unheld or of the unswept part of it.
    WITH unswept AS MATERIALIZED (
        -- few rows, unless no sweep has run for a long time
        SELECT c.vehicle_id, c.vehicle_created_at,
               c.wrong_status IS NOT NULL AS wrong_status,
               c.needs_outcome
                   AND (c.auction_end_date IS NULL OR c.auction_end_date < now()) AS needs_outcome,
               c.missing_fields IS NOT NULL AS missing_fields
          FROM backfill_candidates c
         WHERE c.held_until <= now()
    ), picked AS (
        (SELECT 1 AS rank, c.vehicle_id, c.vehicle_created_at
           FROM backfill_candidates c
          WHERE c.wrong_status IS NOT NULL AND c.held_until IS NULL
          ORDER BY c.vehicle_created_at, c.vehicle_id
          LIMIT p_limit)
        UNION ALL
        (SELECT 1, u.vehicle_id, u.vehicle_created_at
           FROM unswept u
          WHERE u.wrong_status
          ORDER BY u.vehicle_created_at, u.vehicle_id
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
        (SELECT 2, u.vehicle_id, u.vehicle_created_at
           FROM unswept u
          WHERE u.needs_outcome
          ORDER BY u.vehicle_created_at, u.vehicle_id
          LIMIT p_limit)
        UNION ALL
        (SELECT 3, c.vehicle_id, c.vehicle_created_at
           FROM backfill_candidates c
          WHERE c.missing_fields IS NOT NULL AND c.held_until IS NULL
          ORDER BY c.vehicle_created_at, c.vehicle_id
          LIMIT p_limit)
        UNION ALL
        (SELECT 3, u.vehicle_id, u.vehicle_created_at
           FROM unswept u
          WHERE u.missing_fields
          ORDER BY u.vehicle_created_at, u.vehicle_id
          LIMIT p_limit)
    ), best AS (
        SELECT DISTINCT ON (p.vehicle_id) p.rank, p.vehicle_id, p.vehicle_created_at
          FROM picked p
         ORDER BY p.vehicle_id, p.rank
    ), chosen AS MATERIALIZED (
        SELECT b.rank, b.vehicle_id, b.vehicle_created_at
          FROM best b
         ORDER BY b.rank, b.vehicle_created_at, b.vehicle_id
         LIMIT p_limit
    )
    -- the reason texts and URLs of the chosen rows only
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
        -- failed jobs whose cool-down has passed (their vehicle may look fine now). Their number
        -- is bounded by the failures of about a day; the CTE makes the plan start from them.
        RETURN QUERY
        WITH due AS MATERIALIZED (
            SELECT q.vehicle_id
              FROM bat_extraction_queue q
             WHERE q.status = 'failed' AND q.next_attempt_at <= now()
        )
        SELECT d.vehicle_id, 'retry_failed'::text, v.bat_auction_url
          FROM due d
          JOIN vehicles v ON v.id = d.vehicle_id
         WHERE nullif(btrim(v.bat_auction_url), '') IS NOT NULL
           AND d.vehicle_id <> ALL (ids)
         ORDER BY v.created_at, v.id
         LIMIT p_limit - cardinality(ids);
    END IF;
END
$fn$;
