-- The global BaT request budget (bat_request_budget, one row). Times come from clock_timestamp(),
-- not now(): a caller may have waited for the row lock, and the slot must be real time.
-- The slow-down decays by half every :recovery_seconds after the last 403/429.

-- name: take_request_slot
-- purpose: Book the next free request slot if it starts within :max_wait_seconds; the seconds to wait until it (no row: nothing booked).
WITH cur AS MATERIALIZED (
    -- FOR UPDATE: bookings queue on the one row, so no two callers ever get the same slot.
    SELECT b.id,
           greatest(b.next_slot, clock_timestamp()) AS slot,
           bat_request_slow_factor(b.slow_factor, b.slowed_at,
                                   CAST(:recovery_seconds AS float8)) AS factor
      FROM bat_request_budget b
     WHERE b.id = 1
       FOR UPDATE
)
UPDATE bat_request_budget b
   SET next_slot = cur.slot
                   + CAST(:interval_seconds AS float8) * cur.factor * interval '1 second',
       requests = b.requests + 1
  FROM cur
 WHERE b.id = cur.id
   AND cur.slot <= clock_timestamp() + CAST(:max_wait_seconds AS float8) * interval '1 second'
RETURNING greatest(0, extract(epoch FROM cur.slot - clock_timestamp()))::float8 AS wait_seconds,
          cur.factor::float8 AS factor;

-- name: slow_request_budget
-- purpose: BaT answered 403/429: double the (decayed) interval multiplier up to :max_factor and push the next slot out; the new multiplier.
WITH cur AS MATERIALIZED (
    SELECT b.id,
           bat_request_slow_factor(b.slow_factor, b.slowed_at,
                                   CAST(:recovery_seconds AS float8)) AS factor
      FROM bat_request_budget b
     WHERE b.id = 1
       FOR UPDATE
)
UPDATE bat_request_budget b
   SET slow_factor = least(CAST(:max_factor AS float8), 2 * cur.factor),
       slowed_at = clock_timestamp(),
       next_slot = greatest(b.next_slot, clock_timestamp())
                   + CAST(:interval_seconds AS float8)
                     * least(CAST(:max_factor AS float8), 2 * cur.factor) * interval '1 second',
       throttles = b.throttles + 1
  FROM cur
 WHERE b.id = cur.id
RETURNING b.slow_factor::float8 AS factor;

-- name: request_budget_state
-- purpose: The budget as operators see it: seconds until the next free slot, the current multiplier, totals.
SELECT greatest(0, extract(epoch FROM b.next_slot - clock_timestamp()))::float8 AS next_slot_in_seconds,
       bat_request_slow_factor(b.slow_factor, b.slowed_at,
                               CAST(:recovery_seconds AS float8)) AS factor,
       b.requests,
       b.throttles
  FROM bat_request_budget b
 WHERE b.id = 1;
