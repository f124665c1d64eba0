-- One request budget for BaT shared by every process that fetches (dispatch, extractors, force
-- processing, the CLI): each fetch books the next free slot on this single row first.
-- Idempotent: safe to run on a database that already has it.

CREATE TABLE IF NOT EXISTS bat_request_budget (
    id          smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),  -- exactly one row
    next_slot   timestamptz NOT NULL DEFAULT now(),  -- the earliest moment the next request may start
    slow_factor float8 NOT NULL DEFAULT 1 CHECK (slow_factor >= 1),  -- interval multiplier after 403/429
    slowed_at   timestamptz NOT NULL DEFAULT now(),  -- when BaT last asked us to slow down
    requests    bigint NOT NULL DEFAULT 0,           -- slots booked, ever
    throttles   bigint NOT NULL DEFAULT 0            -- 403/429 answers, ever
);

INSERT INTO bat_request_budget (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
