-- Admin console sessions: server-side, so logging out or demoting an admin ends them at once.
create table console_sessions (
    -- SHA-256 of the session cookie's value; the cookie itself is never stored.
    digest blob primary key not null check (length(digest) = 32),
    user_id text not null references users (id) on delete cascade,
    created_at integer not null,
    last_seen_at integer not null
) strict;

create index console_sessions_user on console_sessions (user_id);
