-- The demo's own statements: sample vehicles in, their state out for the before/after table.

-- name: delete_samples
-- purpose: remove an earlier run's sample vehicles (fixed ids) and discovered listings, so the demo can run again.
DELETE FROM vehicles
WHERE id = ANY(CAST(:ids AS uuid[])) OR bat_auction_url = ANY(CAST(:urls AS text[]));

-- name: clear_runs
-- purpose: the demo's table of orchestrator runs starts empty.
DELETE FROM orchestrator_runs;

-- name: insert_sample
-- purpose: one sample vehicle as a scraper stored it, defect included.
INSERT INTO vehicles (id, bat_auction_url, created_at, year, make, model, vin, mileage,
                      mileage_unit, color, transmission, drivetrain, bat_buyer, sale_status,
                      sale_price, high_bid, auction_end_date)
VALUES (CAST(:id AS uuid), :url, now() - make_interval(mins => :age), :year, :make, :model, :vin,
        :mileage, :mileage_unit, :color, :transmission, :drivetrain, :bat_buyer, :sale_status,
        :sale_price, :high_bid, :auction_end_date);

-- name: insert_sample_event
-- purpose: the auction event a scraper stored with a sample's unsold status.
INSERT INTO auction_events (vehicle_id, listing_url, outcome, high_bid)
VALUES (CAST(:id AS uuid), :url, :outcome, :bid);

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
SELECT vehicle_id::text, status, attempts, last_error FROM bat_extraction_queue
WHERE vehicle_id = ANY(CAST(:ids AS uuid[]));
