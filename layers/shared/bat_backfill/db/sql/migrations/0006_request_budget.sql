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

-- The interval multiplier now: a slow-down decays by half every p_recovery_seconds after the
-- last 403/429. VOLATILE: it reads clock_timestamp() (real time, after any wait for the row).
CREATE OR REPLACE FUNCTION bat_request_slow_factor(p_factor float8, p_slowed_at timestamptz,
                                                   p_recovery_seconds float8)
RETURNS float8
LANGUAGE sql VOLATILE AS $fn$
    SELECT 1 + (p_factor - 1)
               * power(0.5, greatest(0, extract(epoch FROM clock_timestamp() - p_slowed_at))
                            / p_recovery_seconds)
$fn$;
