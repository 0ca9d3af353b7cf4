-- Sessions (supabase/auth's `sessions`): one row per login, named by the `session_id` claim of
-- every access token issued for it, so a token of an ended session is refused at once
-- (README "How sessions end"). Refresh tokens belong to a session; the session, not the token,
-- says whether the login is alive.
create table sessions (
    -- UUIDv4 text; existing sessions keep their refresh-token family id.
    id text primary key not null check (length(id) = 36),
    user_id text not null references users (id) on delete cascade,
    created_at integer not null,
    -- The last refresh (the inactivity timeout of a later version reads it).
    refreshed_at integer not null,
    updated_at integer not null,
    -- Null while the session lives; set once, with why it ended.
    ended_at integer,
    ended_reason text check (ended_reason in ('logout', 'password_change', 'ban', 'admin', 'refresh_token_reuse')),
    check ((ended_at is null) = (ended_reason is null))
) strict;

create index sessions_user on sessions (user_id, ended_at);

-- Backfill: each refresh-token family becomes a session. A family with no live token (neither
-- rotated nor revoked) has ended; the reason is unknown, and 'admin' is the closest honest label.
insert into sessions (id, user_id, created_at, refreshed_at, updated_at, ended_at, ended_reason)
select
    family_id,
    min(user_id),
    min(created_at),
    max(created_at),
    max(coalesce(revoked_at, created_at)),
    case when sum(case when rotated_at is null and revoked_at is null then 1 else 0 end) = 0
        then max(coalesce(revoked_at, rotated_at, created_at)) end,
    case when sum(case when rotated_at is null and revoked_at is null then 1 else 0 end) = 0
        then 'admin' end
from refresh_tokens
group by family_id;

-- Refresh tokens now name their session (a real foreign key, which SQLite can only add by
-- rebuilding the table). `access_digest` is dropped: it existed to find the caller's session
-- from an access token, which the `session_id` claim now says; keeping digests of bearer
-- credentials that nothing reads would only be a liability.
create table refresh_tokens_v2 (
    id integer primary key autoincrement,
    -- SHA-256 of the token; the token itself is never stored (DESIGN §4.2).
    digest blob not null unique check (length(digest) = 32),
    user_id text not null references users (id) on delete cascade,
    -- Every token rotated from one login shares the session: reuse detection ends it whole.
    session_id text not null references sessions (id) on delete cascade,
    parent_id integer references refresh_tokens_v2 (id) on delete set null,
    -- Set when the token is rotated (its successor exists) or revoked.
    rotated_at integer,
    revoked_at integer,
    created_at integer not null
) strict;

insert into refresh_tokens_v2 (id, digest, user_id, session_id, parent_id, rotated_at, revoked_at, created_at)
select id, digest, user_id, family_id, parent_id, rotated_at, revoked_at, created_at
from refresh_tokens;

drop table refresh_tokens;
alter table refresh_tokens_v2 rename to refresh_tokens;

create index refresh_tokens_user on refresh_tokens (user_id, created_at);
create index refresh_tokens_session on refresh_tokens (session_id);
create index refresh_tokens_parent on refresh_tokens (parent_id);
