-- bat-backfill's own tables: comments, the audit trail of every change, what a page proved it
-- does not state, and orchestrator runs.

-- Keyed by BaT's own numeric comment id: a thread position changes, the id does not.
CREATE TABLE IF NOT EXISTS bat_comments (
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

CREATE INDEX IF NOT EXISTS bat_comments_vehicle_posted_idx ON bat_comments (vehicle_id, posted_at);

-- 'conflict' rows record a page value that disagrees with the stored one and was NOT applied.
CREATE TABLE IF NOT EXISTS vehicle_audit (
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

CREATE INDEX IF NOT EXISTS vehicle_audit_vehicle_changed_idx ON vehicle_audit (vehicle_id, changed_at);

-- The selector stops asking for this critical field: the latest extraction proved the page does
-- not state it, or the database refused the page's value (a VIN another row holds under the
-- unique index); `reason` says which.
CREATE TABLE IF NOT EXISTS extraction_absences (
    vehicle_id  uuid REFERENCES vehicles (id) ON DELETE CASCADE,
    field       text,
    listing_url text,
    reason      text,
    recorded_at timestamptz DEFAULT now(),
    PRIMARY KEY (vehicle_id, field)
);

CREATE TABLE IF NOT EXISTS orchestrator_runs (
    id           bigserial PRIMARY KEY,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    status       text CHECK (status IN ('running', 'ok', 'partial', 'failed')),
    steps        jsonb NOT NULL DEFAULT '{}',
    queue_depths jsonb,
    error        text
);

CREATE INDEX IF NOT EXISTS orchestrator_runs_started_idx ON orchestrator_runs (started_at DESC);
