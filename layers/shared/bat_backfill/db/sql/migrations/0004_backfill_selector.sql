-- The backfill selector, whole: which vehicles need re-extraction and why, the holds a job puts on
-- its vehicle, the auto-queue, and the trigger that queues new BaT vehicles. It stays fast on
-- millions of vehicles through backfill_candidates, a table the triggers below keep equal to the
-- judgement, with one partial index per reason over the vehicles no job holds. It reads the
-- original system's columns and vocabularies (vehicles.sale_status, auction_outcome, the text
-- auction_end_date, auction_events.outcome and source_url).

-- Why a vehicle is wrong, judged from its own columns plus facts from auction_events (a verified
-- sale, the latest outcome). A sale is verified only by an event that bat-backfill extracted
-- from the listing page or that names the winner: the original system wrote 'sold' events for
-- "Bid to" lots. NULL = its sale status is plausible.
CREATE OR REPLACE FUNCTION backfill_wrong_status(
    p_sale_status text, p_auction_outcome text, p_sale_price numeric, p_high_bid numeric,
    p_buyer text, p_verified_sale boolean, p_latest_outcome text
) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE
        WHEN p_sale_price IS NOT NULL
             AND p_sale_status IN ('bid_to', 'not_sold', 'unsold', 'auction_live', 'upcoming')
            THEN 'wrong_sale_status: sale price on a ' || p_sale_status || ' vehicle'
        WHEN p_sale_price IS NOT NULL AND p_auction_outcome IN ('reserve_not_met', 'no_sale', 'pending')
            THEN 'wrong_sale_status: sale price on a ' || p_auction_outcome || ' outcome'
        WHEN p_sale_price IS NOT NULL
             AND p_latest_outcome IN ('reserve_not_met', 'no_sale', 'bid_to', 'cancelled', 'live', 'pending')
            THEN 'wrong_sale_status: sale price on a ' || p_latest_outcome || ' auction event'
        WHEN coalesce(p_verified_sale, false) THEN NULL
        -- "Bid to USD $X" stored as a sale: the price is the high bid and nobody bought it.
        WHEN p_sale_price = p_high_bid AND nullif(btrim(p_buyer), '') IS NULL
            THEN 'wrong_sale_status: sale price equals the high bid, no buyer, no verified sale'
        WHEN p_sale_status = 'sold' OR p_auction_outcome = 'sold'
            THEN 'wrong_sale_status: sold without a verified sale'
        WHEN p_sale_price IS NOT NULL THEN 'wrong_sale_status: sale price without a verified sale'
    END
$fn$;

-- The critical fields a vehicle lacks ('vin, mileage'), minus those its page proved it does not
-- state (extraction_absences; colour may be recorded as 'color' or 'exterior_color'). NULL = none.
CREATE OR REPLACE FUNCTION backfill_missing_fields(
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
CREATE OR REPLACE FUNCTION backfill_judgement(p_vehicle_ids uuid[])
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
               bool_or(e.outcome = 'sold'
                       AND (e.extracted_at IS NOT NULL
                            OR nullif(btrim(e.winning_bidder), '') IS NOT NULL)) AS has_verified_sale,
               -- an outcome bat-backfill read from the page (a running auction is not one), or
               -- a verified sale: one that names its winner is an outcome as well
               bool_or((e.extracted_at IS NOT NULL
                        AND e.outcome IN ('sold', 'reserve_not_met', 'no_sale', 'bid_to', 'cancelled',
                                          'relisted'))
                       OR (e.outcome = 'sold'
                           AND nullif(btrim(e.winning_bidder), '') IS NOT NULL)) AS has_final_outcome,
               (array_agg(e.outcome ORDER BY coalesce(e.auction_end_date, e.created_at) DESC,
                                             e.created_at DESC)
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
           bat_end_instant(v.auction_end_date),
           backfill_wrong_status(v.sale_status, v.auction_outcome, v.sale_price, v.high_bid,
                                 v.bat_buyer, ev.has_verified_sale, ev.latest_outcome),
           NOT coalesce(ev.has_final_outcome, false),
           backfill_missing_fields(v.vin, v.mileage, v.color, v.transmission, v.drivetrain,
                                   ab.fields)
      FROM ids
      JOIN vehicles v ON v.id = ids.id
      LEFT JOIN ev ON ev.vehicle_id = v.id
      LEFT JOIN ab ON ab.vehicle_id = v.id
     WHERE bat_vehicle_listing(v.bat_auction_url, v.discovery_url) IS NOT NULL
$fn$;
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
                              p_next_attempt_at timestamptz, p_error_kind text)
RETURNS timestamptz
LANGUAGE sql STABLE AS $fn$
    SELECT CASE p_status
        WHEN 'pending' THEN 'infinity'::timestamptz
        WHEN 'processing' THEN 'infinity'::timestamptz
        WHEN 'complete' THEN coalesce(p_completed_at, '-infinity') + interval '24 hours'
        -- a permanent failure (not a BaT listing, page gone) holds until someone re-queues it
        WHEN 'failed' THEN CASE WHEN p_error_kind = 'permanent' THEN 'infinity'::timestamptz
                                ELSE coalesce(p_next_attempt_at, '-infinity') END
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
-- Permanent failures: the few held-for-ever candidates that skipped_count does not count.
CREATE INDEX IF NOT EXISTS bat_extraction_queue_permanent_idx
    ON bat_extraction_queue (vehicle_id) WHERE status = 'failed' AND error_kind = 'permanent';
-- Holds that have ended but are not swept yet (held_until <= now()); also counts the held.
CREATE INDEX backfill_candidates_held_until_idx
    ON backfill_candidates (held_until) WHERE held_until IS NOT NULL;

-- Re-judge the given vehicles (distinct ids) and make backfill_candidates agree. Callers hold the
-- vehicles' row locks (see the triggers), so refreshes of one vehicle never interleave.
CREATE OR REPLACE FUNCTION refresh_backfill_candidates(p_vehicle_ids uuid[]) RETURNS void
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
                   CASE WHEN backfill_hold(q.status, q.completed_at, q.next_attempt_at, q.error_kind) > now()
                        THEN backfill_hold(q.status, q.completed_at, q.next_attempt_at, q.error_kind)
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
CREATE OR REPLACE FUNCTION refresh_backfill_holds(p_vehicle_ids uuid[]) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE backfill_candidates c
       SET held_until = h.held_until
      FROM (SELECT u.id,
                   CASE WHEN backfill_hold(q.status, q.completed_at, q.next_attempt_at, q.error_kind) > now()
                        THEN backfill_hold(q.status, q.completed_at, q.next_attempt_at, q.error_kind)
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
CREATE OR REPLACE FUNCTION sweep_backfill_holds() RETURNS int
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
CREATE OR REPLACE FUNCTION refresh_backfill_retries(p_vehicle_ids uuid[]) RETURNS void
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
            SELECT q.vehicle_id, v.created_at, coalesce(q.next_attempt_at, '-infinity') AS next_attempt_at
              FROM ids
              JOIN bat_extraction_queue q ON q.vehicle_id = ids.id
              JOIN vehicles v ON v.id = q.vehicle_id
             WHERE q.status = 'failed' AND q.error_kind IS DISTINCT FROM 'permanent'
               AND bat_vehicle_listing(v.bat_auction_url, v.discovery_url) IS NOT NULL
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

CREATE OR REPLACE FUNCTION rebuild_backfill_retries() RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM backfill_retries;
    INSERT INTO backfill_retries (vehicle_id, vehicle_created_at, next_attempt_at)
    SELECT q.vehicle_id, v.created_at, coalesce(q.next_attempt_at, '-infinity')
      FROM bat_extraction_queue q
      JOIN vehicles v ON v.id = q.vehicle_id
     WHERE q.status = 'failed' AND q.error_kind IS DISTINCT FROM 'permanent'
       AND bat_vehicle_listing(v.bat_auction_url, v.discovery_url) IS NOT NULL;
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

-- A vehicle whose created_at or URLs change is also re-derived in backfill_retries.
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
                   WHERE (n.created_at, n.bat_auction_url, n.discovery_url, n.auction_end_date,
                          n.sale_status, n.auction_outcome, n.sale_price, n.high_bid, n.bat_buyer,
                          n.vin, n.mileage, n.color, n.transmission, n.drivetrain)
                         IS DISTINCT FROM
                         (o.created_at, o.bat_auction_url, o.discovery_url, o.auction_end_date,
                          o.sale_status, o.auction_outcome, o.sale_price, o.high_bid, o.bat_buyer,
                          o.vin, o.mileage, o.color, o.transmission, o.drivetrain)),
               array_agg(n.id) FILTER (
                   WHERE (n.created_at, n.bat_auction_url, n.discovery_url)
                         IS DISTINCT FROM (o.created_at, o.bat_auction_url, o.discovery_url))
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
CREATE OR REPLACE FUNCTION backfill_candidates_after_facts() RETURNS trigger
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

-- A job whose hold may have changed, or that moved to another vehicle. A row trigger filtered by
-- WHEN in the executor: claims, dispatch marks, lease rescues, releases and retries that stay
-- pending or processing (held for good either way) fire nothing and capture no transition table.
-- The WHEN is a superset of "backfill_hold() changed": it knows only that pending and processing
-- hold alike, and otherwise fires when a column backfill_hold reads (status, completed_at,
-- next_attempt_at) changed; the function sets the exact hold. It does not call backfill_hold
-- itself: a WHEN is prepared for every statement, and inlining a SQL function there parses its
-- body each time. Fired at the end of the statement: NEW is the row as the statement left it.
CREATE OR REPLACE FUNCTION backfill_candidates_after_queue_row() RETURNS trigger
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
    SELECT v.created_at, bat_vehicle_listing(v.bat_auction_url, v.discovery_url) IS NOT NULL
      INTO vehicle_created, has_url
      FROM vehicles v
     WHERE v.id = NEW.vehicle_id
       FOR NO KEY UPDATE;
    new_hold := backfill_hold(NEW.status, NEW.completed_at, NEW.next_attempt_at, NEW.error_kind);
    IF new_hold <= now() THEN
        new_hold := NULL;  -- an ended hold; NULL stays NULL (no hold)
    END IF;
    UPDATE backfill_candidates c
       SET held_until = new_hold
     WHERE c.vehicle_id = NEW.vehicle_id
       AND c.held_until IS DISTINCT FROM new_hold;
    IF NEW.status = 'failed' AND NEW.error_kind IS DISTINCT FROM 'permanent' AND has_url THEN
        INSERT INTO backfill_retries AS r (vehicle_id, vehicle_created_at, next_attempt_at)
        VALUES (NEW.vehicle_id, vehicle_created, coalesce(NEW.next_attempt_at, '-infinity'))
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

-- The queue's statement triggers handle INSERT and DELETE only (a bulk load or a cascade is
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

CREATE TRIGGER backfill_candidates_after_queue_insert
    AFTER INSERT ON bat_extraction_queue REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_queue();
CREATE TRIGGER backfill_candidates_after_queue_update
    AFTER UPDATE ON bat_extraction_queue
    FOR EACH ROW
    WHEN (OLD.vehicle_id <> NEW.vehicle_id
          OR (NOT (OLD.status IN ('pending', 'processing') AND NEW.status IN ('pending', 'processing'))
              AND (OLD.status, OLD.completed_at, OLD.next_attempt_at, OLD.error_kind)
                  IS DISTINCT FROM (NEW.status, NEW.completed_at, NEW.next_attempt_at, NEW.error_kind)))
    EXECUTE FUNCTION backfill_candidates_after_queue_row();
CREATE TRIGGER backfill_candidates_after_queue_delete
    AFTER DELETE ON bat_extraction_queue REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_queue();

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

CREATE TRIGGER backfill_candidates_after_events_truncate
    AFTER TRUNCATE ON auction_events
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_truncate();
CREATE TRIGGER backfill_candidates_after_absences_truncate
    AFTER TRUNCATE ON extraction_absences
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_truncate();
CREATE TRIGGER backfill_candidates_after_queue_truncate
    AFTER TRUNCATE ON bat_extraction_queue
    FOR EACH STATEMENT EXECUTE FUNCTION backfill_candidates_after_truncate();

-- ------------------------------------------------------------------ the selector

-- The original system may have left its own versions of the seed's two functions, with other
-- result columns; CREATE OR REPLACE cannot change those, so they are replaced outright.
DROP FUNCTION IF EXISTS queue_bat_backfill_vehicles(int, int);
DROP FUNCTION IF EXISTS auto_queue_bat_backfills(int, int);

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
           array_agg(bat_vehicle_listing(v.bat_auction_url, v.discovery_url) ORDER BY ch.rank, ch.vehicle_created_at, ch.vehicle_id)
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
        SELECT r.vehicle_id, 'retry_failed'::text, bat_vehicle_listing(v.bat_auction_url, v.discovery_url)
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

-- Queue the selector's vehicles at p_priority. Concurrency: two runs may select the same vehicles;
-- the unique vehicle_id makes the second wait for the first and then find the row pending, so it
-- counts it as skipped instead of queueing it twice. Rows are inserted in vehicle_id order so two
-- runs always lock in the same order (no deadlock).
CREATE OR REPLACE FUNCTION auto_queue_bat_backfills(p_batch_size int, p_priority int)
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
        RETURNING q.vehicle_id
    )
    SELECT (SELECT count(*) FROM queued)::int,
           -- the seed's "already queued": vehicles that need a backfill and whose job is pending
           -- or processing, plus those another run queued while this one was choosing. A
           -- candidate held for ever is held by a pending, processing or permanently failed job:
           -- counting the holds and taking off the (few) permanent failures reads two indexes
           -- instead of joining every queued vehicle to its job.
           ((SELECT count(*) FROM backfill_candidates c WHERE c.held_until = 'infinity')
            - (SELECT count(*)
                 FROM bat_extraction_queue q
                 JOIN backfill_candidates c ON c.vehicle_id = q.vehicle_id
                WHERE q.status = 'failed' AND q.error_kind = 'permanent'
                  AND c.held_until = 'infinity')
            + (SELECT count(*) FROM picked) - (SELECT count(*) FROM queued))::int;
END
$fn$;

-- The seed's "new extractions auto-queued from triggers": a vehicle row with a BaT listing, written
-- by any program, is queued at priority 100 with reason 'new_listing'. Idempotent with the rest: a
-- vehicle that has a job keeps it (ON CONFLICT DO NOTHING). A session that loads vehicles in
-- bulk, or creates one that it extracts in the same transaction, turns it off with
-- SET LOCAL bat_backfill.queue_new_vehicles = 'off'.
CREATE OR REPLACE FUNCTION bat_queue_new_vehicles() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF current_setting('bat_backfill.queue_new_vehicles', true) = 'off' THEN
        RETURN NULL;
    END IF;
    INSERT INTO bat_extraction_queue AS q (vehicle_id, bat_url, priority, status, reason)
    SELECT n.id, bat_vehicle_listing(n.bat_auction_url, n.discovery_url), 100, 'pending',
           'new_listing'
      FROM new_rows n
     WHERE bat_vehicle_listing(n.bat_auction_url, n.discovery_url) IS NOT NULL
     ORDER BY n.id
    ON CONFLICT (vehicle_id) DO NOTHING;
    RETURN NULL;
END
$fn$;

-- Named after the backfill_candidates triggers so that it fires after them (same event, name order).
CREATE TRIGGER bat_queue_new_vehicles
    AFTER INSERT ON vehicles REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bat_queue_new_vehicles();

-- Vehicles and jobs that existed before this migration.
SELECT rebuild_backfill_candidates();
