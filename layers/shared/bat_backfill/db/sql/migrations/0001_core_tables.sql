-- Vehicles scraped from BaT and everything learned about them: auction events, comments,
-- the audit trail of every change, what a page proved it does not state, and orchestrator runs.

CREATE TABLE vehicles (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    year             int,
    make             text,
    model            text,
    title            text,
    vin              text,
    mileage          int,
    mileage_unit     text CHECK (mileage_unit IN ('miles', 'km', 'tmu')),
    color            text,
    interior_color   text,
    transmission     text,
    drivetrain       text,
    engine           text,
    bat_auction_url  text,
    sale_price       bigint,
    high_bid         bigint,
    sale_status      text CHECK (sale_status IN ('sold', 'bid_to', 'no_sale', 'withdrawn', 'live')),
    auction_end_date timestamptz,
    bat_lot_number   int,
    bat_seller       text,
    bat_buyer        text,
    bat_location     text,
    no_reserve       boolean,
    bid_count        int,
    comment_count    int,
    view_count       int,
    watcher_count    int,
    image_urls       text[],
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Not unique: operators' imported data may hold the same listing twice.
CREATE INDEX vehicles_bat_auction_url_idx ON vehicles (bat_auction_url);

-- One row per listing of a vehicle (a car can be listed again after a no-sale).
CREATE TABLE auction_events (
    id             bigserial PRIMARY KEY,
    vehicle_id     uuid NOT NULL REFERENCES vehicles (id) ON DELETE CASCADE,
    listing_url    text NOT NULL,
    outcome        text CHECK (outcome IN ('sold', 'bid_to', 'no_sale', 'withdrawn', 'live')),
    high_bid       bigint,
    sale_price     bigint,
    currency       text,
    winning_bidder text,
    bid_count      int,
    comment_count  int,
    view_count     int,
    watcher_count  int,
    ended_at       timestamptz,
    lot_number     int,
    snapshot_key   text,
    extracted_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (vehicle_id, listing_url)
);

-- Keyed by BaT's own numeric comment id: a thread position changes, the id does not.
CREATE TABLE bat_comments (
    comment_id    bigint PRIMARY KEY,
    vehicle_id    uuid NOT NULL REFERENCES vehicles (id) ON DELETE CASCADE,
    listing_url   text NOT NULL,
    kind          text CHECK (kind IN ('comment', 'bid', 'result', 'rnm_accepted', 'canceled_bid', 'seller_reply')),
    author        text,
    is_seller     boolean NOT NULL DEFAULT false,
    posted_at     timestamptz,
    body          text NOT NULL,
    bid_amount    bigint,
    likes         int NOT NULL DEFAULT 0,
    parent_id     bigint,
    first_seen_at timestamptz DEFAULT now()
);

CREATE INDEX bat_comments_vehicle_posted_idx ON bat_comments (vehicle_id, posted_at);

-- 'conflict' rows record a page value that disagrees with the stored one and was NOT applied.
CREATE TABLE vehicle_audit (
    id           bigserial PRIMARY KEY,
    vehicle_id   uuid NOT NULL REFERENCES vehicles (id) ON DELETE CASCADE,
    field        text NOT NULL,
    old_value    text,
    new_value    text,
    action       text CHECK (action IN ('fill', 'correct', 'conflict')),
    source_url   text,
    snapshot_key text,
    job_id       bigint,
    changed_at   timestamptz DEFAULT now()
);

CREATE INDEX vehicle_audit_vehicle_changed_idx ON vehicle_audit (vehicle_id, changed_at);

-- The latest extraction proved the page does not state this field: the selector stops asking.
CREATE TABLE extraction_absences (
    vehicle_id  uuid REFERENCES vehicles (id) ON DELETE CASCADE,
    field       text,
    listing_url text,
    recorded_at timestamptz DEFAULT now(),
    PRIMARY KEY (vehicle_id, field)
);

CREATE TABLE orchestrator_runs (
    id           bigserial PRIMARY KEY,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    status       text CHECK (status IN ('running', 'ok', 'partial', 'failed')),
    steps        jsonb NOT NULL DEFAULT '{}',
    queue_depths jsonb,
    error        text
);

CREATE INDEX orchestrator_runs_started_idx ON orchestrator_runs (started_at DESC);
