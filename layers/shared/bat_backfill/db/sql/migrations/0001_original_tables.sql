-- The original BaT backfill system's three tables, in its shape: its column names, types,
-- vocabularies and constraints, quirks included (a text auction_end_date, a numeric(10,2)
-- sale_price, a unique VIN index, uuid ids, the listing of an event in source_url). Other
-- programs read these tables. IF NOT EXISTS everywhere: on a database that system left behind
-- this migration changes nothing, and what bat-backfill needs beyond it is added by 0002,
-- column by column. bat-backfill never drops, renames or retypes a column of these tables.

CREATE TABLE IF NOT EXISTS vehicles (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    year             integer,
    make             text,
    model            text,
    trim             text,
    body_style       text,
    vin              text,
    mileage          integer,
    color            text,
    interior_color   text,
    transmission     text,
    drivetrain       text,
    engine_size      text,
    bat_auction_url  text,
    discovery_url    text,
    listing_title    text,
    sale_price       numeric(10,2),
    asking_price     numeric,
    high_bid         integer,
    winning_bid      integer,
    bid_count        integer,
    auction_outcome  text CHECK (auction_outcome IN ('sold', 'reserve_not_met', 'no_sale', 'pending', 'ended')),
    sale_status      text CHECK (sale_status IS NULL OR sale_status IN (
                         'not_for_sale', 'for_sale', 'sold', 'pending', 'auction_live', 'ended',
                         'available', 'discovered', 'not_sold', 'unsold', 'upcoming', 'bid_to')),
    reserve_status   text CHECK (reserve_status IS NULL OR reserve_status IN ('no_reserve', 'reserve_met', 'reserve_not_met')),
    auction_end_date text,
    sale_date        date,
    bat_seller       text,
    bat_buyer        text,
    bat_location     text,
    bat_lot_number   text,
    bat_bids         integer,
    bat_comments     integer,
    bat_views        integer,
    bat_watchers     integer,
    origin_metadata  jsonb,
    description      text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX IF NOT EXISTS vehicles_vin_unique_index ON vehicles (vin);
CREATE UNIQUE INDEX IF NOT EXISTS vehicles_discovery_url_unique ON vehicles (discovery_url);

CREATE TABLE IF NOT EXISTS auction_events (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vehicle_id      uuid REFERENCES vehicles (id),
    source          text NOT NULL,
    source_url      text,
    lot_number      text,
    auction_end_date timestamptz,
    outcome         text NOT NULL CHECK (outcome IN (
                        'sold', 'reserve_not_met', 'no_sale', 'bid_to', 'cancelled', 'relisted', 'pending', 'live')),
    high_bid        numeric,
    winning_bid     numeric,
    winning_bidder  text,
    seller_name     text,
    total_bids      integer,
    page_views      integer,
    watchers        integer,
    comments_count  integer,
    raw_data        jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (vehicle_id, source_url)
);

CREATE TABLE IF NOT EXISTS bat_extraction_queue (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vehicle_id      uuid NOT NULL UNIQUE REFERENCES vehicles (id) ON DELETE CASCADE,
    bat_url         text NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'complete', 'failed')),
    priority        integer NOT NULL DEFAULT 100,
    error_message   text,
    attempts        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    next_attempt_at timestamptz,
    locked_at       timestamptz,
    locked_by       text,
    last_attempt_at timestamptz
);

CREATE INDEX IF NOT EXISTS bat_extraction_queue_claim_idx
    ON bat_extraction_queue (status, priority DESC, created_at);
