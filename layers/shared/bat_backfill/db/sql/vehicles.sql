-- name: lock_vehicles_of_listing
-- purpose: every vehicle row of one listing (any spelling of its URL) plus the named vehicle, locked in id order so two repairs of one listing serialise.
SELECT id::text AS id, year, make, model, listing_title, vin, mileage, mileage_unit, color,
       interior_color, transmission, drivetrain, engine_size, bat_auction_url, discovery_url,
       sale_price, winning_bid, high_bid, sale_status, auction_outcome, reserve_status,
       auction_end_date, sale_date, bat_lot_number, bat_seller, bat_buyer, bat_location,
       bid_count, bat_bids, bat_comments, bat_views, bat_watchers, image_urls
FROM vehicles
WHERE id = CAST(:vehicle_id AS uuid)
   OR bat_vehicle_listing(bat_auction_url, discovery_url) = bat_listing_url(:url)
ORDER BY id
FOR UPDATE;

-- name: find_vehicle_by_url
-- purpose: the oldest vehicle recorded for a listing, whatever the spelling of its URL.
SELECT id::text FROM vehicles
WHERE bat_vehicle_listing(bat_auction_url, discovery_url) = bat_listing_url(:url)
ORDER BY created_at, id LIMIT 1;

-- name: vehicle_listing_url
-- purpose: the BaT listing of one vehicle, canonical (no row: no such vehicle; NULL: not a BaT listing).
SELECT bat_vehicle_listing(bat_auction_url, discovery_url) FROM vehicles
WHERE id = CAST(:vehicle_id AS uuid);

-- name: create_vehicle
-- purpose: a bare vehicle for a newly discovered listing; the caller extracts or queues it, so the new-vehicle trigger stands aside for this transaction.
INSERT INTO vehicles (bat_auction_url, listing_title, year)
SELECT :url, :title, CAST(:year AS int)
FROM (SELECT set_config('bat_backfill.queue_new_vehicles', 'off', true)) AS off
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
-- purpose: critical fields the selector stops asking for: the page does not state them, or the database refused the page's value (the reason says which).
INSERT INTO extraction_absences (vehicle_id, field, listing_url, reason)
SELECT CAST(:vehicle_id AS uuid), a.field, :url, a.reason
FROM unnest(CAST(:fields AS text[]), CAST(:reasons AS text[])) AS a(field, reason)
ON CONFLICT (vehicle_id, field) DO UPDATE
SET listing_url = EXCLUDED.listing_url, reason = EXCLUDED.reason, recorded_at = now();

-- name: clear_absences
-- purpose: the page states these fields now; any earlier absence record is obsolete.
DELETE FROM extraction_absences
WHERE vehicle_id = CAST(:vehicle_id AS uuid) AND field = ANY(CAST(:fields AS text[]));

-- name: listing_events
-- purpose: the auction events of one vehicle for one listing, whatever the spelling of their source_url, with the listing's events that name no vehicle; locked.
SELECT id::text AS id, vehicle_id::text AS vehicle_id, outcome, high_bid, winning_bid,
       winning_bidder
FROM auction_events
WHERE (vehicle_id = CAST(:vehicle_id AS uuid) OR vehicle_id IS NULL)
  AND bat_listing_url(source_url) = :url
ORDER BY vehicle_id NULLS LAST, created_at, id
FOR UPDATE;

-- name: insert_auction_event
-- purpose: the first event of a vehicle and listing, extracted from its page.
INSERT INTO auction_events (vehicle_id, source, source_url, outcome, high_bid, winning_bid,
                            winning_bidder, seller_name, currency, total_bids, comments_count,
                            page_views, watchers, auction_end_date, lot_number, snapshot_key,
                            extracted_at)
VALUES (CAST(:vehicle_id AS uuid), 'bat', :url, :outcome, :high_bid, :winning_bid,
        :winning_bidder, :seller_name, :currency, :total_bids, :comments_count, :page_views,
        :watchers, :ended_at, :lot_number, :snapshot_key, now())
RETURNING id::text;

-- name: correct_auction_event
-- purpose: an event of the listing brought in line with its page, in place (its source_url, source and raw_data stay); an event that named no vehicle is given this one.
UPDATE auction_events SET
  vehicle_id = coalesce(vehicle_id, CAST(:vehicle_id AS uuid)),
  outcome = :outcome, high_bid = :high_bid, winning_bid = :winning_bid,
  winning_bidder = :winning_bidder, seller_name = coalesce(:seller_name, seller_name),
  currency = :currency, total_bids = coalesce(:total_bids, total_bids),
  comments_count = coalesce(:comments_count, comments_count),
  page_views = coalesce(:page_views, page_views), watchers = coalesce(:watchers, watchers),
  auction_end_date = coalesce(CAST(:ended_at AS timestamptz), auction_end_date),
  lot_number = coalesce(:lot_number, lot_number),
  snapshot_key = coalesce(:snapshot_key, snapshot_key), extracted_at = now(), updated_at = now()
WHERE id = CAST(:event_id AS uuid);

-- name: latest_snapshot
-- purpose: the snapshot key of the newest extraction of a vehicle's listing, if any.
SELECT snapshot_key FROM auction_events
WHERE vehicle_id = CAST(:vehicle_id AS uuid) AND bat_listing_url(source_url) = :url
  AND snapshot_key IS NOT NULL
ORDER BY extracted_at DESC NULLS LAST LIMIT 1;

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
WHERE NOT EXISTS (SELECT 1 FROM vehicles v
                  WHERE bat_vehicle_listing(v.bat_auction_url, v.discovery_url) = bat_listing_url(u));
