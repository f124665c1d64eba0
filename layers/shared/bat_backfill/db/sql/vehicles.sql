-- name: lock_vehicle
-- purpose: the vehicle row to repair, locked so two repairs of one vehicle serialise.
SELECT id::text AS id, year, make, model, title, vin, mileage, mileage_unit, color,
       interior_color, transmission, drivetrain, engine, bat_auction_url, sale_price, high_bid,
       sale_status, auction_end_date, bat_lot_number, bat_seller, bat_buyer, bat_location,
       no_reserve, bid_count, comment_count, view_count, watcher_count, image_urls
FROM vehicles WHERE id = CAST(:vehicle_id AS uuid)
FOR UPDATE;

-- name: find_vehicle_by_url
-- purpose: the oldest vehicle recorded for a listing URL (operators' data may hold duplicates).
SELECT id::text FROM vehicles
WHERE bat_auction_url IN (:url, rtrim(:url, '/'))
ORDER BY created_at, id LIMIT 1;

-- name: vehicle_listing_url
-- purpose: the stored listing URL of one vehicle (no row: no such vehicle).
SELECT bat_auction_url FROM vehicles WHERE id = CAST(:vehicle_id AS uuid);

-- name: create_vehicle
-- purpose: a bare vehicle for a newly discovered listing; the extractor fills the rest.
INSERT INTO vehicles (bat_auction_url, title, year) VALUES (:url, :title, :year)
RETURNING id::text;

-- name: insert_audit
-- purpose: the audited field changes of one repair (and conflicts kept for review), one statement, same transaction as the change.
INSERT INTO vehicle_audit (vehicle_id, field, old_value, new_value, action, source_url,
                           snapshot_key, job_id)
SELECT CAST(:vehicle_id AS uuid), a.field, a.old_value, a.new_value, a.action, :source_url,
       :snapshot_key, :job_id
FROM unnest(CAST(:fields AS text[]), CAST(:old_values AS text[]), CAST(:new_values AS text[]),
            CAST(:actions AS text[])) WITH ORDINALITY AS a(field, old_value, new_value, action, n)
ORDER BY a.n;

-- name: open_conflict_exists
-- purpose: whether this exact disagreement was already recorded, so re-runs do not repeat it.
SELECT 1 FROM vehicle_audit
WHERE vehicle_id = CAST(:vehicle_id AS uuid) AND field = :field AND action = 'conflict'
  AND old_value IS NOT DISTINCT FROM :old_value AND new_value IS NOT DISTINCT FROM :new_value
LIMIT 1;

-- name: record_absences
-- purpose: the latest extraction proved the page does not state these critical fields.
INSERT INTO extraction_absences (vehicle_id, field, listing_url)
SELECT CAST(:vehicle_id AS uuid), f, :url FROM unnest(CAST(:fields AS text[])) AS f
ON CONFLICT (vehicle_id, field) DO UPDATE
SET listing_url = EXCLUDED.listing_url, recorded_at = now();

-- name: clear_absences
-- purpose: the page states these fields now; any earlier absence record is obsolete.
DELETE FROM extraction_absences
WHERE vehicle_id = CAST(:vehicle_id AS uuid) AND field = ANY(CAST(:fields AS text[]));

-- name: upsert_auction_event
-- purpose: the one auction event of a vehicle and listing URL, replaced by the newest extraction.
INSERT INTO auction_events (vehicle_id, listing_url, outcome, high_bid, sale_price, currency,
                            winning_bidder, bid_count, comment_count, view_count, watcher_count,
                            ended_at, lot_number, snapshot_key, extracted_at)
VALUES (CAST(:vehicle_id AS uuid), :url, :outcome, :high_bid, :sale_price, :currency,
        :winning_bidder, :bid_count, :comment_count, :view_count, :watcher_count, :ended_at,
        :lot_number, :snapshot_key, now())
ON CONFLICT (vehicle_id, listing_url) DO UPDATE SET
  outcome = EXCLUDED.outcome, high_bid = EXCLUDED.high_bid, sale_price = EXCLUDED.sale_price,
  currency = EXCLUDED.currency, winning_bidder = EXCLUDED.winning_bidder,
  bid_count = EXCLUDED.bid_count, comment_count = EXCLUDED.comment_count,
  view_count = EXCLUDED.view_count, watcher_count = EXCLUDED.watcher_count,
  ended_at = EXCLUDED.ended_at, lot_number = EXCLUDED.lot_number,
  snapshot_key = COALESCE(EXCLUDED.snapshot_key, auction_events.snapshot_key),
  extracted_at = now(), updated_at = now()
RETURNING id;

-- name: latest_snapshot
-- purpose: the snapshot key of the newest extraction of a vehicle's listing, if any.
SELECT snapshot_key FROM auction_events
WHERE vehicle_id = CAST(:vehicle_id AS uuid) AND listing_url = :url AND snapshot_key IS NOT NULL;

-- name: upsert_comments
-- purpose: comments and bids keyed by BaT's numeric comment id; re-running changes only likes.
INSERT INTO bat_comments (comment_id, vehicle_id, listing_url, kind, author, is_seller, posted_at,
                          body, bid_amount, likes, parent_id)
SELECT c.id, CAST(:vehicle_id AS uuid), :url, c.kind, c.author, c.is_seller, c.posted_at, c.body,
       c.bid_amount, c.likes, c.parent_id
FROM unnest(CAST(:ids AS bigint[]), CAST(:kinds AS text[]), CAST(:authors AS text[]),
            CAST(:sellers AS boolean[]), CAST(:posted AS timestamptz[]), CAST(:bodies AS text[]),
            CAST(:amounts AS bigint[]), CAST(:likes AS int[]), CAST(:parents AS bigint[]))
     AS c(id, kind, author, is_seller, posted_at, body, bid_amount, likes, parent_id)
ON CONFLICT (comment_id) DO UPDATE SET likes = EXCLUDED.likes
  WHERE bat_comments.likes IS DISTINCT FROM EXCLUDED.likes
RETURNING (xmax = 0) AS inserted;

-- name: unknown_urls
-- purpose: which discovered listing URLs no vehicle has yet.
SELECT u FROM unnest(CAST(:urls AS text[])) AS u
WHERE NOT EXISTS (SELECT 1 FROM vehicles v WHERE v.bat_auction_url IN (u, rtrim(u, '/')));
