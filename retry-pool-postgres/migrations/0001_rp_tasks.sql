-- The durable line of retry-pool-postgres: one row per task, from push to outcome.
--
-- Order of claims: `lane` first (0 = LIFO retries, ahead of every priority; 1 = the rest),
-- then `priority` (smaller first), then `order_key` (new tasks and FIFO retries draw
-- ascending keys, LIFO retries descending negative ones, so the latest failure is first).

CREATE SEQUENCE rp_order_fifo AS bigint START WITH 1 INCREMENT BY 1;
CREATE SEQUENCE rp_order_lifo AS bigint START WITH -1 INCREMENT BY -1 MINVALUE -9223372036854775808 MAXVALUE -1;

CREATE TABLE rp_tasks (
    id               bigserial   PRIMARY KEY,
    queue            text        NOT NULL,
    payload          jsonb       NOT NULL,
    priority         integer     NOT NULL DEFAULT 0,
    lane             smallint    NOT NULL DEFAULT 1 CHECK (lane IN (0, 1)),
    order_key        bigint      NOT NULL DEFAULT nextval('rp_order_fifo'),
    state            text        NOT NULL DEFAULT 'available'
                     CHECK (state IN ('available', 'running', 'succeeded', 'failed', 'cancelled')),
    -- Attempts started so far; the running attempt's number while `running`.
    attempt          integer     NOT NULL DEFAULT 0,
    -- Set by the worker that claims the task, from its own `attempts` setting.
    max_attempts     integer     NOT NULL DEFAULT 1,
    -- Not claimed before this moment: backoff after a failure.
    run_at           timestamptz NOT NULL DEFAULT now(),
    lease_owner      text,
    lease_expires_at timestamptz,
    cancel_requested boolean     NOT NULL DEFAULT false,
    last_error       text,
    outcome          jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    -- A lease exactly while running: a worker that lost it holds nothing to write with.
    CONSTRAINT rp_tasks_lease CHECK ((state = 'running') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)),
    -- Final states, and only they, have a finishing time.
    CONSTRAINT rp_tasks_finished CHECK ((state IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL))
);

-- The claim's scan: available tasks of one queue in claim order.
CREATE INDEX rp_tasks_available ON rp_tasks (queue, lane, priority, order_key) WHERE state = 'available';
-- The rescue's scan: running tasks of one queue by lease expiry.
CREATE INDEX rp_tasks_leases ON rp_tasks (queue, lease_expires_at) WHERE state = 'running';
-- Queue stats.
CREATE INDEX rp_tasks_queue_state ON rp_tasks (queue, state);
