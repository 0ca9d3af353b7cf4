-- Rate-limit state, one row per throttled key (GCRA: the whole state is one timestamp), kept in
-- the store so that several nodes can share it once a second backend exists.
create table throttles (
    -- `<scope>:<subject>`, e.g. `password:ada@example.org` or `ip.token:192.0.2.1`.
    key text primary key not null check (length(key) <= 512),
    -- GCRA's theoretical arrival time, unix milliseconds. A row whose tat_ms is in the past
    -- holds no state, so the sweep deletes it (bounding the table); the index serves it.
    tat_ms integer not null
) strict;

create index throttles_tat on throttles (tat_ms);
