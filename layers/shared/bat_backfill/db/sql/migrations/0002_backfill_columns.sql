-- What bat-backfill needs beyond the original system's tables, added in place: only new
-- nullable columns (with defaults where new rows need one), indexes, functions and triggers.
-- Every column the code reads is named here with IF NOT EXISTS, so a database whose tables
-- lack some of the original columns gets them too. Facts keep the original system's columns
-- and vocabularies (README: "Where each fact goes").

-- ------------------------------------------------------------------ vehicles
ALTER TABLE vehicles
    ADD COLUMN IF NOT EXISTS year integer,
    ADD COLUMN IF NOT EXISTS make text,
    ADD COLUMN IF NOT EXISTS model text,
    ADD COLUMN IF NOT EXISTS vin text,
    ADD COLUMN IF NOT EXISTS mileage integer,
    ADD COLUMN IF NOT EXISTS color text,
    ADD COLUMN IF NOT EXISTS interior_color text,
    ADD COLUMN IF NOT EXISTS transmission text,
    ADD COLUMN IF NOT EXISTS drivetrain text,
    ADD COLUMN IF NOT EXISTS engine_size text,
    ADD COLUMN IF NOT EXISTS bat_auction_url text,
    ADD COLUMN IF NOT EXISTS discovery_url text,
    ADD COLUMN IF NOT EXISTS listing_title text,
    ADD COLUMN IF NOT EXISTS sale_price numeric(10,2),
    ADD COLUMN IF NOT EXISTS high_bid integer,
    ADD COLUMN IF NOT EXISTS winning_bid integer,
    ADD COLUMN IF NOT EXISTS bid_count integer,
    ADD COLUMN IF NOT EXISTS auction_outcome text,
    ADD COLUMN IF NOT EXISTS sale_status text,
    ADD COLUMN IF NOT EXISTS reserve_status text,
    ADD COLUMN IF NOT EXISTS auction_end_date text,
    ADD COLUMN IF NOT EXISTS sale_date date,
    ADD COLUMN IF NOT EXISTS bat_seller text,
    ADD COLUMN IF NOT EXISTS bat_buyer text,
    ADD COLUMN IF NOT EXISTS bat_location text,
    ADD COLUMN IF NOT EXISTS bat_lot_number text,
    ADD COLUMN IF NOT EXISTS bat_bids integer,
    ADD COLUMN IF NOT EXISTS bat_comments integer,
    ADD COLUMN IF NOT EXISTS bat_views integer,
    ADD COLUMN IF NOT EXISTS bat_watchers integer,
    ADD COLUMN IF NOT EXISTS created_at timestamptz DEFAULT now(),
    ADD COLUMN IF NOT EXISTS updated_at timestamptz DEFAULT now(),
    -- new: the unit of `mileage` (miles, km, or tmu: true mileage unknown) and the gallery
    ADD COLUMN IF NOT EXISTS mileage_unit text CHECK (mileage_unit IN ('miles', 'km', 'tmu')),
    ADD COLUMN IF NOT EXISTS image_urls text[];

-- ------------------------------------------------------------------ auction_events
ALTER TABLE auction_events
    ADD COLUMN IF NOT EXISTS vehicle_id uuid,
    ADD COLUMN IF NOT EXISTS source text,
    ADD COLUMN IF NOT EXISTS source_url text,
    ADD COLUMN IF NOT EXISTS lot_number text,
    ADD COLUMN IF NOT EXISTS auction_end_date timestamptz,
    ADD COLUMN IF NOT EXISTS outcome text,
    ADD COLUMN IF NOT EXISTS high_bid numeric,
    ADD COLUMN IF NOT EXISTS winning_bid numeric,
    ADD COLUMN IF NOT EXISTS winning_bidder text,
    ADD COLUMN IF NOT EXISTS seller_name text,
    ADD COLUMN IF NOT EXISTS total_bids integer,
    ADD COLUMN IF NOT EXISTS page_views integer,
    ADD COLUMN IF NOT EXISTS watchers integer,
    ADD COLUMN IF NOT EXISTS comments_count integer,
    ADD COLUMN IF NOT EXISTS created_at timestamptz DEFAULT now(),
    ADD COLUMN IF NOT EXISTS updated_at timestamptz DEFAULT now(),
    -- new: the price's currency, the page snapshot, and when bat-backfill extracted the event
    -- from its listing page (NULL: another program wrote it, so it proves nothing)
    ADD COLUMN IF NOT EXISTS currency text,
    ADD COLUMN IF NOT EXISTS snapshot_key text,
    ADD COLUMN IF NOT EXISTS extracted_at timestamptz;

-- ------------------------------------------------------------------ bat_extraction_queue
CREATE SEQUENCE IF NOT EXISTS bat_extraction_queue_job_no_seq;
ALTER TABLE bat_extraction_queue
    ADD COLUMN IF NOT EXISTS error_message text,
    ADD COLUMN IF NOT EXISTS attempts integer DEFAULT 0,
    ADD COLUMN IF NOT EXISTS completed_at timestamptz,
    ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz,
    ADD COLUMN IF NOT EXISTS locked_at timestamptz,
    ADD COLUMN IF NOT EXISTS locked_by text,
    ADD COLUMN IF NOT EXISTS last_attempt_at timestamptz,
    -- new: the number SQS messages and the audit trail carry (the uuid id stays the key);
    -- existing rows are numbered by this statement
    ADD COLUMN IF NOT EXISTS job_no bigint DEFAULT nextval('bat_extraction_queue_job_no_seq'),
    ADD COLUMN IF NOT EXISTS reason text,
    ADD COLUMN IF NOT EXISTS dispatched_at timestamptz,
    ADD COLUMN IF NOT EXISTS lease_expires_at timestamptz,
    -- bumped by every claim and rescue: the fence against a late writer
    ADD COLUMN IF NOT EXISTS lease_generation bigint DEFAULT 0,
    ADD COLUMN IF NOT EXISTS error_kind text CHECK (error_kind IN ('retryable', 'permanent')),
    -- attempts the original system made before this job was adopted: the retry policy counts
    -- only bat-backfill's own (the old claim stopped at 3, stranding rows that reached it).
    -- Adopted rows get NULL, read as "all of its attempts so far"; the first claim fixes the
    -- number. No UPDATE here: it would fire the original system's own triggers on every row.
    ADD COLUMN IF NOT EXISTS attempts_carried integer;
ALTER TABLE bat_extraction_queue ALTER COLUMN attempts_carried SET DEFAULT 0;
ALTER SEQUENCE bat_extraction_queue_job_no_seq OWNED BY bat_extraction_queue.job_no;
-- The original system left next_attempt_at NULL; new rows are due when written.
ALTER TABLE bat_extraction_queue ALTER COLUMN next_attempt_at SET DEFAULT now();

CREATE UNIQUE INDEX IF NOT EXISTS bat_extraction_queue_job_no_idx ON bat_extraction_queue (job_no);
-- claim_next and select_for_dispatch walk this in order; also the seed's
-- "pending AND priority = 75 ORDER BY created_at" monitoring query.
CREATE INDEX IF NOT EXISTS bat_extraction_queue_pending_idx
    ON bat_extraction_queue (priority DESC, created_at, job_no) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS bat_extraction_queue_processing_idx
    ON bat_extraction_queue (lease_expires_at) WHERE status = 'processing';

-- ------------------------------------------------------------------ listing URLs

-- The canonical form of a BaT listing URL (https://bringatrailer.com/listing/<slug>/), or NULL
-- when the text is not one: the same rule as urls.parse_listing_url in Python, tested to agree.
-- Scheme and host in any case, with or without www., the slash, a query or a fragment.
CREATE OR REPLACE FUNCTION bat_listing_url(p_url text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $fn$
    SELECT 'https://bringatrailer.com/listing/' || s[1] || '/'
      FROM regexp_match(p_url, '^\s*https?://(?:www\.)?bringatrailer\.com(?::443)?(/.*)$', 'i') AS m,
           -- the path in its own case (only scheme and host are case-insensitive)
           regexp_match(m[1], '^/listing/([a-z0-9][a-z0-9-]*)/?(?:[?#].*|\s*)$') AS s
     -- the slug's bound as a length, not a {0,200} bound in the pattern: Postgres's regex
     -- engine pays for a bounded repeat on every call (270-310 us a call against 25-40 us)
     WHERE length(p_url) <= 400 AND length(s[1]) <= 201
$fn$;

-- The BaT listing of a vehicle row: its bat_auction_url, else a BaT listing in discovery_url.
CREATE OR REPLACE FUNCTION bat_vehicle_listing(p_bat_auction_url text, p_discovery_url text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT coalesce(bat_listing_url(p_bat_auction_url), bat_listing_url(p_discovery_url))
$fn$;

-- The instant of the original system's text auction_end_date ('YYYY-MM-DD' or ISO), NULL when
-- it cannot be read (a date is taken as its end, 23:59:59 UTC).
CREATE OR REPLACE FUNCTION bat_end_instant(p_text text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT AS $fn$
BEGIN
    IF p_text ~ '^\s*\d{4}-\d{2}-\d{2}\s*$' THEN
        RETURN (btrim(p_text)::date + interval '1 day' - interval '1 second') AT TIME ZONE 'UTC';
    ELSIF p_text ~ '^\s*\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}' THEN
        RETURN btrim(p_text)::timestamptz;
    END IF;
    RETURN NULL;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$fn$;

CREATE INDEX IF NOT EXISTS vehicles_bat_listing_idx
    ON vehicles (bat_vehicle_listing(bat_auction_url, discovery_url));
CREATE INDEX IF NOT EXISTS auction_events_listing_idx
    ON auction_events (vehicle_id, bat_listing_url(source_url));

-- ------------------------------------------------------------------ queue trigger

CREATE OR REPLACE FUNCTION bat_extraction_queue_before_update() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF NEW.status = 'pending' AND OLD.status IN ('complete', 'failed') THEN
        -- A re-queue starts over: the original system kept the attempt count, so re-queued
        -- failed rows could never be claimed again.
        NEW.attempts := 0;
        NEW.attempts_carried := 0;
        IF NEW.next_attempt_at IS NOT DISTINCT FROM OLD.next_attempt_at THEN
            NEW.next_attempt_at := now();
        END IF;
        NEW.dispatched_at := NULL;
        NEW.locked_at := NULL;
        NEW.locked_by := NULL;
        NEW.lease_expires_at := NULL;
        NEW.completed_at := NULL;
        NEW.error_kind := NULL;
    ELSIF OLD.status = 'processing' AND NEW.status = 'pending'
          AND NEW.locked_by IS NOT DISTINCT FROM OLD.locked_by
          AND NEW.lease_expires_at IS NOT DISTINCT FROM OLD.lease_expires_at THEN
        -- A hand-written re-queue (e.g. the seed's ON CONFLICT ... SET status = 'pending') of a
        -- row a worker holds; the queue code always clears the lease when it leaves 'processing'.
        IF bat_lease_end(OLD.lease_expires_at, OLD.locked_at, OLD.updated_at) > now() THEN
            -- The vehicle is being extracted right now: keep the live lease (no double processing).
            NEW.status := 'processing';
        ELSE
            -- An orphan: rescue it like rescue_expired does, fencing out the old holder.
            NEW.locked_at := NULL;
            NEW.locked_by := NULL;
            NEW.lease_expires_at := NULL;
            NEW.dispatched_at := NULL;
            NEW.next_attempt_at := now();
            NEW.lease_generation := coalesce(OLD.lease_generation, 0) + 1;
        END IF;
    END IF;
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$fn$;

-- When a processing row's lease ends: its own lease, else (a row the original system's workers
-- locked, with no lease) 30 minutes after it was locked.
CREATE OR REPLACE FUNCTION bat_lease_end(p_lease_expires_at timestamptz, p_locked_at timestamptz,
                                         p_updated_at timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE AS $fn$
    SELECT coalesce(p_lease_expires_at,
                    coalesce(p_locked_at, p_updated_at, '-infinity') + interval '30 minutes')
$fn$;

DROP TRIGGER IF EXISTS bat_extraction_queue_before_update ON bat_extraction_queue;
CREATE TRIGGER bat_extraction_queue_before_update
    BEFORE UPDATE ON bat_extraction_queue
    FOR EACH ROW EXECUTE FUNCTION bat_extraction_queue_before_update();
