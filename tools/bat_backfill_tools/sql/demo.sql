-- The demo's own statements: sample vehicles in, their state out for the before/after table.

-- name: vehicles_table
-- purpose: whether the database has a vehicles table at all (an empty database has none).
SELECT to_regclass('vehicles') IS NOT NULL;

-- name: stored_vehicles
-- purpose: the id and listing URL of each vehicle, whatever the table's shape, up to a cap (the demo never writes that many), to see whether the demo wrote them.
SELECT to_jsonb(v) ->> 'id', to_jsonb(v) ->> 'bat_auction_url' FROM vehicles v LIMIT :cap;

-- name: rows_not_the_demos
-- purpose: the tables holding a row the demo did not write: a row of a vehicle that is not the demo's (or of none), or any row of a table the demo never writes. The migrations' ledger and the request budget are the demo's machinery; orchestrator runs and checkpoints are its own only beside its vehicles. Reads the catalog and one row per table at most.
WITH demo AS (
    SELECT CAST(:ids AS text[]) AS ids
), machinery AS (
    SELECT to_regclass(t) AS oid
    FROM demo, unnest(ARRAY['vehicles', 'schema_migrations', 'bat_request_budget']
                      || CASE WHEN cardinality(demo.ids) > 0
                              THEN ARRAY['orchestrator_runs', 'results_index_checkpoints']
                              ELSE ARRAY[]::text[] END) AS t
), tables AS (
    SELECT n.nspname AS schema_name, c.relname AS table_name,
           EXISTS (SELECT 1 FROM pg_attribute a
                   WHERE a.attrelid = c.oid AND a.attname = 'vehicle_id' AND a.attnum > 0
                     AND NOT a.attisdropped) AS by_vehicle
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
      AND c.oid NOT IN (SELECT m.oid FROM machinery m WHERE m.oid IS NOT NULL)
)
SELECT format('%I.%I', t.schema_name, t.table_name)
FROM tables t, demo
WHERE (xpath('/row/n/text()', query_to_xml(format(
          CASE WHEN t.by_vehicle
               THEN 'SELECT count(*) AS n FROM (SELECT 1 FROM %I.%I WHERE vehicle_id IS NULL '
                    'OR NOT (vehicle_id::text = ANY (%L::text[])) LIMIT 1) x'
               ELSE 'SELECT count(*) AS n FROM (SELECT 1 FROM %I.%I LIMIT 1) x' END,
          t.schema_name, t.table_name, demo.ids), false, true, '')))[1]::text <> '0'
ORDER BY 1;

-- name: delete_sample_events
-- purpose: the auction events of the demo's earlier vehicles, removed first (the original system's foreign key does not cascade).
DELETE FROM auction_events WHERE vehicle_id = ANY(CAST(:ids AS uuid[]));

-- name: delete_samples
-- purpose: remove the demo's earlier vehicles (its database holds nothing else) so the demo can run again.
DELETE FROM vehicles WHERE id = ANY(CAST(:ids AS uuid[]));

-- name: clear_runs
-- purpose: the demo's table of orchestrator runs starts empty.
DELETE FROM orchestrator_runs;

-- name: insert_sample
-- purpose: one sample vehicle as the original system stored it (its columns and vocabularies), defect included; the demo queues it itself, so the new-vehicle trigger stands aside.
INSERT INTO vehicles (id, bat_auction_url, created_at, year, make, model, vin, mileage,
                      mileage_unit, color, transmission, drivetrain, bat_buyer, sale_status,
                      auction_outcome, sale_price, high_bid, auction_end_date)
SELECT CAST(:id AS uuid), :url, now() - make_interval(mins => :age), :year, :make, :model, :vin,
       :mileage, :mileage_unit, :color, :transmission, :drivetrain, :bat_buyer, :sale_status,
       :auction_outcome, :sale_price, :high_bid, :auction_end_date
FROM (SELECT set_config('bat_backfill.queue_new_vehicles', 'off', true)) AS off;

-- name: insert_sample_event
-- purpose: an auction event as the original system stored it (no winner, not extracted by bat-backfill), under the URL spelling it used.
INSERT INTO auction_events (vehicle_id, source, source_url, outcome, high_bid)
VALUES (CAST(:id AS uuid), 'bat', :url, :outcome, :bid);

-- name: sample_state
-- purpose: the fields the before/after table compares, per sample vehicle.
SELECT id::text, sale_status, sale_price, high_bid, vin, mileage, color, transmission,
       drivetrain, bat_buyer
FROM vehicles WHERE id = ANY(CAST(:ids AS uuid[]));

-- name: new_listing_jobs
-- purpose: jobs of the listings discovery found, by status.
SELECT q.status, count(*) FROM bat_extraction_queue q
WHERE q.reason = 'new_listing' AND q.bat_url = ANY(CAST(:urls AS text[]))
GROUP BY q.status;

-- name: sample_audit
-- purpose: every audited change of the sample vehicles, in order.
SELECT vehicle_id::text, field, action, old_value, new_value FROM vehicle_audit
WHERE vehicle_id = ANY(CAST(:ids AS uuid[])) ORDER BY id;

-- name: sample_absences
-- purpose: what the sample pages proved they do not state.
SELECT vehicle_id::text, field FROM extraction_absences
WHERE vehicle_id = ANY(CAST(:ids AS uuid[]));

-- name: sample_jobs
-- purpose: the sample vehicles' jobs as they ended.
SELECT vehicle_id::text, status, attempts, error_message FROM bat_extraction_queue
WHERE vehicle_id = ANY(CAST(:ids AS uuid[]));
