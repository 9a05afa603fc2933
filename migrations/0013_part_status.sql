-- What each long-running part of each process last reported (casebook/part_reports.py):
-- `casebook consumers status` reads it to show parts running in other processes. A row
-- whose reported_at is old belongs to a process that died without removing it.
-- depends: 0012_sequence_gaps

CREATE TABLE casebook_part_status (
    process text NOT NULL,       -- host:pid of the process running the part
    part text NOT NULL,
    state text NOT NULL,         -- starting, running, down, stopped
    since timestamptz NOT NULL,
    restarts integer NOT NULL,
    failures integer NOT NULL,
    lag bigint,
    last_error text,
    last_error_at timestamptz,
    failing_since timestamptz,
    trouble text,                -- why the part makes its process unhealthy, if it does
    reported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (process, part)
);
