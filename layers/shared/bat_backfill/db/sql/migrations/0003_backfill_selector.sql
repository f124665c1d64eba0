-- The backfill selector: which vehicles need re-extraction and why, and the auto-queue. It stays
-- fast on millions of vehicles through backfill_candidates, a table the triggers below keep equal
-- to the judgement, with one partial index per reason over the vehicles no job holds.

-- Why a vehicle is wrong, judged from its own columns plus facts from auction_events
-- (a verified sale, the latest outcome). NULL = its sale status is plausible.
CREATE FUNCTION backfill_wrong_status(
    p_sale_status text, p_sale_price bigint, p_high_bid bigint, p_buyer text,
    p_verified_sale boolean, p_latest_outcome text
) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE
        WHEN p_sale_price IS NOT NULL AND p_sale_status IN ('bid_to', 'no_sale', 'withdrawn', 'live')
            THEN 'wrong_sale_status: sale price on a ' || p_sale_status || ' outcome'
        WHEN p_sale_price IS NOT NULL AND p_latest_outcome IN ('bid_to', 'no_sale', 'withdrawn', 'live')
            THEN 'wrong_sale_status: sale price on a ' || p_latest_outcome || ' auction event'
        WHEN coalesce(p_verified_sale, false) THEN NULL
        -- "Bid to USD $X" stored as a sale: the price is the high bid and nobody bought it.
        WHEN p_sale_price = p_high_bid AND p_buyer IS NULL
            THEN 'wrong_sale_status: sale price equals the high bid, no buyer, no sale record'
        WHEN p_sale_status = 'sold' THEN 'wrong_sale_status: sold without a sale record'
        WHEN p_sale_price IS NOT NULL THEN 'wrong_sale_status: sale price without a sale record'
    END
$fn$;

-- The critical fields a vehicle lacks ('vin, mileage'), minus those its page proved it does not
-- state (extraction_absences; colour may be recorded as 'color' or 'exterior_color'). NULL = none.
CREATE FUNCTION backfill_missing_fields(
    p_vin text, p_mileage int, p_color text, p_transmission text, p_drivetrain text,
    p_absent text[]
) RETURNS text
LANGUAGE sql STABLE AS $fn$
    SELECT nullif(array_to_string(ARRAY[
        CASE WHEN nullif(btrim(p_vin), '') IS NULL
                  AND NOT coalesce(p_absent, '{}') && ARRAY['vin'] THEN 'vin' END,
        CASE WHEN p_mileage IS NULL
                  AND NOT coalesce(p_absent, '{}') && ARRAY['mileage'] THEN 'mileage' END,
        CASE WHEN nullif(btrim(p_color), '') IS NULL
                  AND NOT coalesce(p_absent, '{}') && ARRAY['color', 'exterior_color'] THEN 'color' END,
        CASE WHEN nullif(btrim(p_transmission), '') IS NULL
                  AND NOT coalesce(p_absent, '{}') && ARRAY['transmission'] THEN 'transmission' END,
        CASE WHEN nullif(btrim(p_drivetrain), '') IS NULL
                  AND NOT coalesce(p_absent, '{}') && ARRAY['drivetrain'] THEN 'drivetrain' END
    ], ', '), '')
$fn$;

-- What each given vehicle (distinct ids) with a BaT URL needs, judged from its row, its auction
-- events and its recorded absences: the reference definition of the selector's reasons.
CREATE FUNCTION backfill_judgement(p_vehicle_ids uuid[])
RETURNS TABLE (vehicle_id uuid, vehicle_created_at timestamptz, auction_end_date timestamptz,
               wrong_status text, needs_outcome boolean, missing_fields text)
LANGUAGE sql STABLE AS $fn$
    -- Joins against the unnested ids rather than "= ANY": planned with the actual array (see
    -- refresh_backfill_candidates), one job's vehicle is a few index probes and a bulk load of
    -- a million vehicles a few hash joins. No DISTINCT: it would hide the array's size from the
    -- planner.
    WITH ids AS MATERIALIZED (
        SELECT u.id FROM unnest(p_vehicle_ids) AS u (id)
    ), ev AS (
        SELECT e.vehicle_id,
               bool_or(e.outcome = 'sold') AS has_verified_sale,
               -- a running auction ('live') is not an outcome
               bool_or(e.outcome IN ('sold', 'bid_to', 'no_sale', 'withdrawn')) AS has_final_outcome,
               (array_agg(e.outcome ORDER BY coalesce(e.ended_at, e.created_at) DESC, e.id DESC)
                    FILTER (WHERE e.outcome IS NOT NULL))[1] AS latest_outcome
          FROM ids
          JOIN auction_events e ON e.vehicle_id = ids.id
         GROUP BY e.vehicle_id
    ), ab AS (
        SELECT a.vehicle_id, array_agg(a.field) AS fields
          FROM ids
          JOIN extraction_absences a ON a.vehicle_id = ids.id
         GROUP BY a.vehicle_id
    )
    SELECT v.id,
           v.created_at,
           v.auction_end_date,
           backfill_wrong_status(v.sale_status, v.sale_price, v.high_bid, v.bat_buyer,
                                 ev.has_verified_sale, ev.latest_outcome),
           NOT coalesce(ev.has_final_outcome, false),
           backfill_missing_fields(v.vin, v.mileage, v.color, v.transmission, v.drivetrain,
                                   ab.fields)
      FROM ids
      JOIN vehicles v ON v.id = ids.id
      LEFT JOIN ev ON ev.vehicle_id = v.id
      LEFT JOIN ab ON ab.vehicle_id = v.id
     WHERE nullif(btrim(v.bat_auction_url), '') IS NOT NULL
$fn$;

-- Until when a job keeps its vehicle out of the selector: pending or processing for good, complete
-- for 24 hours (its re-extraction just happened), failed until its cool-down ends. NULL = not held.
CREATE FUNCTION backfill_hold(p_status text, p_completed_at timestamptz,
                              p_next_attempt_at timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE p_status
        WHEN 'pending' THEN 'infinity'::timestamptz
        WHEN 'processing' THEN 'infinity'::timestamptz
        WHEN 'complete' THEN p_completed_at + interval '24 hours'
        WHEN 'failed' THEN p_next_attempt_at
    END
$fn$;

-- Vehicles that need something, with what the selector orders and filters by. Derived data,
-- written only by the functions below from triggers. It exists because "no sold auction event",
-- "not recorded absent" and "no job holds it" live in other tables: partial indexes on vehicles
-- could not drop a repaired or queued vehicle, and every selector run would walk past them all.
-- No foreign key (its cost on bulk loads); the vehicles delete/truncate triggers clean up.
CREATE TABLE backfill_candidates (
    vehicle_id         uuid PRIMARY KEY,
    vehicle_created_at timestamptz NOT NULL,
    auction_end_date   timestamptz,
    wrong_status       text,
    needs_outcome      boolean NOT NULL,
    missing_fields     text,
    -- backfill_hold() of its job while in the future; expired holds are swept back to NULL
    held_until         timestamptz,
    refreshed_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (wrong_status IS NOT NULL OR needs_outcome OR missing_fields IS NOT NULL)
);

-- One index per reason over the vehicles no job holds, in the selector's order: each reason is an
-- index scan that stops after p_limit rows.
CREATE INDEX backfill_candidates_wrong_status_idx
    ON backfill_candidates (vehicle_created_at, vehicle_id)
    WHERE wrong_status IS NOT NULL AND held_until IS NULL;
CREATE INDEX backfill_candidates_needs_outcome_idx
    ON backfill_candidates (vehicle_created_at, vehicle_id)
    WHERE needs_outcome AND held_until IS NULL;
CREATE INDEX backfill_candidates_missing_fields_idx
    ON backfill_candidates (vehicle_created_at, vehicle_id)
    WHERE missing_fields IS NOT NULL AND held_until IS NULL;
-- Holds that have ended but are not swept yet (held_until <= now()).
CREATE INDEX backfill_candidates_held_until_idx
    ON backfill_candidates (held_until) WHERE held_until IS NOT NULL;

-- Re-judge the given vehicles (distinct ids) and make backfill_candidates agree. Callers hold the
-- vehicles' row locks (see the triggers), so refreshes of one vehicle never interleave.
CREATE FUNCTION refresh_backfill_candidates(p_vehicle_ids uuid[]) RETURNS void
LANGUAGE plpgsql
-- A bulk load's sorts and hashes stay in memory (the default 4MB spills to disk); compiling a
-- bulk refresh with JIT costs more than it saves.
SET work_mem = '64MB'
SET jit = off
AS $fn$
BEGIN
    IF coalesce(cardinality(p_vehicle_ids), 0) = 0 THEN
        RETURN;
    END IF;
    -- EXECUTE makes a one-shot plan that sees the actual array (a cached generic plan would
    -- nested-loop a million-row bulk load).
    EXECUTE $sql$
        WITH needed AS MATERIALIZED (
            SELECT j.*,
                   CASE WHEN backfill_hold(q.status, q.completed_at, q.next_attempt_at) > now()
                        THEN backfill_hold(q.status, q.completed_at, q.next_attempt_at)
                   END AS held_until
              FROM backfill_judgement($1) j
              LEFT JOIN bat_extraction_queue q ON q.vehicle_id = j.vehicle_id
             WHERE j.wrong_status IS NOT NULL OR j.needs_outcome OR j.missing_fields IS NOT NULL
        ), dropped AS (
            DELETE FROM backfill_candidates c
             USING unnest($1) AS u (id)
             WHERE c.vehicle_id = u.id
               AND NOT EXISTS (SELECT 1 FROM needed n WHERE n.vehicle_id = c.vehicle_id)
        )
        INSERT INTO backfill_candidates AS c
               (vehicle_id, vehicle_created_at, auction_end_date, wrong_status, needs_outcome,
                missing_fields, held_until)
        SELECT n.vehicle_id, n.vehicle_created_at, n.auction_end_date, n.wrong_status,
               n.needs_outcome, n.missing_fields, n.held_until
          FROM needed n
        -- held_until of an existing row is left to the queue trigger and the sweep
        ON CONFLICT (vehicle_id) DO UPDATE
           SET vehicle_created_at = EXCLUDED.vehicle_created_at,
               auction_end_date = EXCLUDED.auction_end_date,
               wrong_status = EXCLUDED.wrong_status,
               needs_outcome = EXCLUDED.needs_outcome,
               missing_fields = EXCLUDED.missing_fields,
               refreshed_at = now()
         WHERE (c.vehicle_created_at, c.auction_end_date, c.wrong_status, c.needs_outcome,
                c.missing_fields)
               IS DISTINCT FROM
               (EXCLUDED.vehicle_created_at, EXCLUDED.auction_end_date, EXCLUDED.wrong_status,
                EXCLUDED.needs_outcome, EXCLUDED.missing_fields)
    $sql$ USING p_vehicle_ids;
END
$fn$;

-- Set held_until of the given vehicles' candidate rows from their jobs.
CREATE FUNCTION refresh_backfill_holds(p_vehicle_ids uuid[]) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE backfill_candidates c
       SET held_until = h.held_until
      FROM (SELECT u.id,
                   CASE WHEN backfill_hold(q.status, q.completed_at, q.next_attempt_at) > now()
                        THEN backfill_hold(q.status, q.completed_at, q.next_attempt_at)
                   END AS held_until
              FROM unnest(p_vehicle_ids) AS u (id)
              LEFT JOIN bat_extraction_queue q ON q.vehicle_id = u.id) h
     WHERE c.vehicle_id = h.id
       AND c.held_until IS DISTINCT FROM h.held_until;
END
$fn$;

-- Put vehicles whose hold has ended back into the per-reason indexes. The UPDATE re-checks
-- held_until on a row a queue change updated meanwhile; SKIP LOCKED leaves rows a concurrent
-- sweep or queue change holds to it rather than waiting.
CREATE FUNCTION sweep_backfill_holds() RETURNS int
LANGUAGE plpgsql AS $fn$
DECLARE
    swept int;
BEGIN
    UPDATE backfill_candidates c
       SET held_until = NULL
     WHERE c.vehicle_id IN (SELECT x.vehicle_id
                              FROM backfill_candidates x
                             WHERE x.held_until <= now()
                               FOR UPDATE SKIP LOCKED)
       AND c.held_until <= now();
    GET DIAGNOSTICS swept = ROW_COUNT;
    RETURN swept;
END
$fn$;

-- Re-judge every vehicle: after a TRUNCATE, or by an operator who doubts the derived table.
CREATE FUNCTION rebuild_backfill_candidates() RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM backfill_candidates;
    PERFORM refresh_backfill_candidates(ARRAY(SELECT v.id FROM vehicles v));
END
$fn$;

-- Statement-level triggers with transition tables: a bulk load is re-judged in one set-based
-- pass. Lock order is always queue row, then vehicle row (as the extractor's), so no deadlock.
CREATE FUNCTION backfill_candidates_after_vehicles() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    -- The statement has locked its vehicle rows already (a new row is seen by no one else).
    IF TG_OP = 'INSERT' THEN
        PERFORM refresh_backfill_candidates(ARRAY(SELECT n.id FROM new_rows n));
    ELSIF TG_OP = 'UPDATE' THEN
        -- only the columns the judgement reads
        PERFORM refresh_backfill_candidates(ARRAY(
            SELECT n.id
              FROM new_rows n
              JOIN old_rows o ON o.id = n.id
             WHERE (n.created_at, n.bat_auction_url, n.auction_end_date, n.sale_status,
                    n.sale_price, n.high_bid, n.bat_buyer, n.vin, n.mileage, n.color,
                    n.transmission, n.drivetrain)
                   IS DISTINCT FROM
                   (o.created_at, o.bat_auction_url, o.auction_end_date, o.sale_status,
                    o.sale_price, o.high_bid, o.bat_buyer, o.vin, o.mileage, o.color,
                    o.transmission, o.drivetrain)));
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM backfill_candidates c USING old_rows o WHERE c.vehicle_id = o.id;
    ELSE
        TRUNCATE backfill_candidates;
    END IF;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER backfill_candidates_after_vehicles_insert
    AFTER INSERT ON vehicles REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_vehicles();
CREATE TRIGGER backfill_candidates_after_vehicles_update
    AFTER UPDATE ON vehicles REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_vehicles();
CREATE TRIGGER backfill_candidates_after_vehicles_delete
    AFTER DELETE ON vehicles REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_vehicles();
CREATE TRIGGER backfill_candidates_after_vehicles_truncate
    AFTER TRUNCATE ON vehicles
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_vehicles();

-- Changes to auction_events or extraction_absences re-judge the vehicles they belong to.
CREATE FUNCTION backfill_candidates_after_facts() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    ids uuid[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        ids := ARRAY(SELECT DISTINCT n.vehicle_id FROM new_rows n);
    ELSIF TG_OP = 'DELETE' THEN
        ids := ARRAY(SELECT DISTINCT o.vehicle_id FROM old_rows o);
    ELSE
        ids := ARRAY(SELECT n.vehicle_id FROM new_rows n UNION SELECT o.vehicle_id FROM old_rows o);
    END IF;
    -- Serialise refreshes of one vehicle: a concurrent transaction changing the same vehicle
    -- waits here, and its refresh (a later statement, a new snapshot) then sees ours, so the
    -- last refresh always sees both. NO KEY UPDATE does not block foreign-key checks.
    PERFORM 1 FROM vehicles v WHERE v.id = ANY (ids) ORDER BY v.id FOR NO KEY UPDATE;
    PERFORM refresh_backfill_candidates(ids);
    RETURN NULL;
END
$fn$;

CREATE TRIGGER backfill_candidates_after_events_insert
    AFTER INSERT ON auction_events REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_facts();
CREATE TRIGGER backfill_candidates_after_events_update
    AFTER UPDATE ON auction_events REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_facts();
CREATE TRIGGER backfill_candidates_after_events_delete
    AFTER DELETE ON auction_events REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_facts();
CREATE TRIGGER backfill_candidates_after_absences_insert
    AFTER INSERT ON extraction_absences REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_facts();
CREATE TRIGGER backfill_candidates_after_absences_update
    AFTER UPDATE ON extraction_absences REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_facts();
CREATE TRIGGER backfill_candidates_after_absences_delete
    AFTER DELETE ON extraction_absences REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_facts();

-- A job that starts or stops holding its vehicle (see backfill_hold) updates held_until. Claims
-- and dispatch marks do not change the hold and cost nothing here.
CREATE FUNCTION backfill_candidates_after_queue() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    ids uuid[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        ids := ARRAY(SELECT n.vehicle_id FROM new_rows n);
    ELSIF TG_OP = 'DELETE' THEN
        ids := ARRAY(SELECT o.vehicle_id FROM old_rows o);
    ELSE
        ids := ARRAY(
            SELECT n.vehicle_id
              FROM new_rows n
              JOIN old_rows o ON o.id = n.id
             WHERE backfill_hold(n.status, n.completed_at, n.next_attempt_at)
                   IS DISTINCT FROM backfill_hold(o.status, o.completed_at, o.next_attempt_at)
                OR n.vehicle_id <> o.vehicle_id
            UNION
            SELECT o.vehicle_id
              FROM new_rows n
              JOIN old_rows o ON o.id = n.id
             WHERE n.vehicle_id <> o.vehicle_id);
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

CREATE TRIGGER backfill_candidates_after_queue_insert
    AFTER INSERT ON bat_extraction_queue REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_queue();
CREATE TRIGGER backfill_candidates_after_queue_update
    AFTER UPDATE ON bat_extraction_queue REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_queue();
CREATE TRIGGER backfill_candidates_after_queue_delete
    AFTER DELETE ON bat_extraction_queue REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_queue();

-- TRUNCATE fires no row or DELETE triggers.
CREATE FUNCTION backfill_candidates_after_truncate() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_TABLE_NAME = 'bat_extraction_queue' THEN
        UPDATE backfill_candidates SET held_until = NULL WHERE held_until IS NOT NULL;
    ELSE
        PERFORM rebuild_backfill_candidates();
    END IF;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER backfill_candidates_after_events_truncate
    AFTER TRUNCATE ON auction_events
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_truncate();
CREATE TRIGGER backfill_candidates_after_absences_truncate
    AFTER TRUNCATE ON extraction_absences
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_truncate();
CREATE TRIGGER backfill_candidates_after_queue_truncate
    AFTER TRUNCATE ON bat_extraction_queue
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_truncate();

-- One row per vehicle to re-extract, most important reason first: wrong sale status, missing
-- outcome (of a listing that has ended), missing critical fields, then failed jobs whose cool-down
-- has passed; oldest vehicle first within a reason. A vehicle whose job is pending or processing,
-- completed within the last 24 hours, or failed and still cooling down is not returned.
-- p_priority is accepted for the seed's signature and not used: the holds are the same for all.
CREATE FUNCTION queue_bat_backfill_vehicles(p_limit int, p_priority int)
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
    -- Each reason is an index scan over its partial index of unheld vehicles, stopped at p_limit;
    -- ended holds not swept yet come from the held_until index. A vehicle in several reasons
    -- appears in each list and DISTINCT ON keeps its most important one. This is exact: a vehicle
    -- in the final top p_limit is within the top p_limit of its own reason's list.
    WITH picked AS MATERIALIZED (
        (SELECT 1 AS rank, c.vehicle_id, c.vehicle_created_at, c.wrong_status AS reason
           FROM backfill_candidates c
          WHERE c.wrong_status IS NOT NULL AND c.held_until IS NULL
          ORDER BY c.vehicle_created_at, c.vehicle_id
          LIMIT p_limit)
        UNION ALL
        (SELECT 2, c.vehicle_id, c.vehicle_created_at, 'missing_outcome'
           FROM backfill_candidates c
          WHERE c.needs_outcome AND c.held_until IS NULL
            -- a running auction has no outcome yet
            AND (c.auction_end_date IS NULL OR c.auction_end_date < now())
          ORDER BY c.vehicle_created_at, c.vehicle_id
          LIMIT p_limit)
        UNION ALL
        (SELECT 3, c.vehicle_id, c.vehicle_created_at, 'missing_fields: ' || c.missing_fields
           FROM backfill_candidates c
          WHERE c.missing_fields IS NOT NULL AND c.held_until IS NULL
          ORDER BY c.vehicle_created_at, c.vehicle_id
          LIMIT p_limit)
    ), unswept AS (
        SELECT r.rank, c.vehicle_id, c.vehicle_created_at, r.reason
          FROM backfill_candidates c
         CROSS JOIN LATERAL (VALUES
                (1, c.wrong_status),
                (2, CASE WHEN c.needs_outcome
                              AND (c.auction_end_date IS NULL OR c.auction_end_date < now())
                         THEN 'missing_outcome' END),
                (3, 'missing_fields: ' || c.missing_fields)) AS r (rank, reason)
         WHERE c.held_until <= now()
           AND r.reason IS NOT NULL
    ), best AS (
        SELECT DISTINCT ON (p.vehicle_id) p.rank, p.vehicle_id, p.vehicle_created_at, p.reason
          FROM (SELECT * FROM picked UNION ALL SELECT * FROM unswept) p
         ORDER BY p.vehicle_id, p.rank
    ), chosen AS (
        SELECT b.rank, b.vehicle_id, b.vehicle_created_at, b.reason, v.bat_auction_url
          FROM best b
          JOIN vehicles v ON v.id = b.vehicle_id
         ORDER BY b.rank, b.vehicle_created_at, b.vehicle_id
         LIMIT p_limit
    )
    SELECT coalesce(array_agg(ch.vehicle_id ORDER BY ch.rank, ch.vehicle_created_at, ch.vehicle_id), '{}'),
           array_agg(ch.reason ORDER BY ch.rank, ch.vehicle_created_at, ch.vehicle_id),
           array_agg(ch.bat_auction_url ORDER BY ch.rank, ch.vehicle_created_at, ch.vehicle_id)
      INTO ids, reasons, urls
      FROM chosen ch;
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

-- Queue the selector's vehicles at p_priority. Concurrency: two runs may select the same vehicles;
-- the unique vehicle_id makes the second wait for the first and then find the row pending, so it
-- counts it as skipped instead of queueing it twice. Rows are inserted in vehicle_id order so two
-- runs always lock in the same order (no deadlock).
CREATE FUNCTION auto_queue_bat_backfills(p_batch_size int, p_priority int)
RETURNS TABLE (queued_count int, skipped_count int)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
BEGIN
    PERFORM sweep_backfill_holds();
    RETURN QUERY
    WITH picked AS MATERIALIZED (
        SELECT s.vehicle_id, s.reason, s.bat_url
          FROM queue_bat_backfill_vehicles(p_batch_size, p_priority) s
    ), queued AS (
        INSERT INTO bat_extraction_queue AS q (vehicle_id, bat_url, priority, status, reason)
        SELECT p.vehicle_id, p.bat_url, p_priority, 'pending', p.reason
          FROM picked p
         ORDER BY p.vehicle_id
        ON CONFLICT (vehicle_id) DO UPDATE
           -- the BEFORE UPDATE trigger resets attempts, lease and dispatch for the re-queue
           SET status = 'pending',
               priority = GREATEST(q.priority, EXCLUDED.priority),
               reason = EXCLUDED.reason,
               bat_url = EXCLUDED.bat_url
         WHERE q.status IN ('failed', 'complete')
        RETURNING q.id
    )
    SELECT (SELECT count(*) FROM queued)::int,
           ((SELECT count(*) FROM picked) - (SELECT count(*) FROM queued))::int;
END
$fn$;

-- Vehicles and jobs that existed before this migration.
SELECT rebuild_backfill_candidates();
