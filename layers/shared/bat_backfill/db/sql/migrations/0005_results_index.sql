-- Where each walk of BaT's results index stands, so discovery and the outcome sweep resume
-- after an outage or a crash instead of starting over (idempotent: adopts a database as it is).

CREATE TABLE IF NOT EXISTS results_index_checkpoints (
    name        text PRIMARY KEY,       -- 'discovery', or 'sweep' (the orchestrator's slice)
    -- discovery: every listing that ended at or before this instant has been seen
    high_water  timestamptz,
    -- discovery: the newest end time of the walk under way (it becomes the high water once
    -- the walk reaches the old high water); NULL when no walk is under way
    walk_top    timestamptz,
    next_page   int NOT NULL DEFAULT 1 CHECK (next_page >= 1),
    pages_total int,
    pages_read  bigint NOT NULL DEFAULT 0,
    items_seen  bigint NOT NULL DEFAULT 0,
    laps        int NOT NULL DEFAULT 0,  -- sweep: complete passes over the index
    updated_at  timestamptz NOT NULL DEFAULT now()
);
