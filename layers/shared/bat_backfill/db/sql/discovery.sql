-- BaT's results index: the walks' checkpoints, one walker at a time, and the stored vehicles
-- an index page names.

-- name: try_index_lock
-- purpose: one walker per checkpoint at a time, so two overlapping runs never read the same pages twice.
SELECT pg_try_advisory_lock(hashtext('bat-backfill:index:' || :walk));

-- name: release_index_lock
-- purpose: the walk is over.
SELECT pg_advisory_unlock(hashtext('bat-backfill:index:' || :walk));

-- name: load_checkpoint
-- purpose: where a walk of the index stands (no row: it never ran).
SELECT name, high_water, walk_top, next_page, pages_total, pages_read, items_seen, laps
FROM results_index_checkpoints WHERE name = :walk;

-- name: save_checkpoint
-- purpose: record a walk's position after each page, so a crash or an outage resumes from there.
INSERT INTO results_index_checkpoints AS c (name, high_water, walk_top, next_page, pages_total,
                                            pages_read, items_seen, laps)
VALUES (:walk, CAST(:high_water AS timestamptz), CAST(:walk_top AS timestamptz),
        CAST(:next_page AS int), CAST(:pages_total AS int), CAST(:pages_read AS bigint),
        CAST(:items_seen AS bigint), CAST(:laps AS int))
ON CONFLICT (name) DO UPDATE SET
  high_water = EXCLUDED.high_water, walk_top = EXCLUDED.walk_top,
  next_page = EXCLUDED.next_page, pages_total = EXCLUDED.pages_total,
  pages_read = c.pages_read + EXCLUDED.pages_read,
  items_seen = c.items_seen + EXCLUDED.items_seen,
  laps = c.laps + EXCLUDED.laps, updated_at = now();

-- name: index_vehicles
-- purpose: the stored vehicles of the listings on one index page, whether a listing page was extracted for them, and their queue state.
SELECT v.id::text AS vehicle_id, u.url,
       EXISTS (SELECT 1 FROM auction_events e
               WHERE e.vehicle_id = v.id AND e.extracted_at IS NOT NULL) AS page_extracted,
       q.status AS job_status
FROM unnest(CAST(:urls AS text[])) AS u(url)
JOIN vehicles v ON bat_vehicle_listing(v.bat_auction_url, v.discovery_url) = bat_listing_url(u.url)
LEFT JOIN bat_extraction_queue q ON q.vehicle_id = v.id
ORDER BY u.url, v.created_at, v.id;

-- name: absent_fields
-- purpose: the critical fields the vehicle's listing page is known not to state.
SELECT field FROM extraction_absences WHERE vehicle_id = CAST(:vehicle_id AS uuid);
