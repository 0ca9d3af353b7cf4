-- The identity store. Conventions: migrations/README.md.

create table users (
    -- UUIDv4, hyphenated lowercase text (readable in the sqlite3 shell; PostgreSQL takes it as uuid).
    id text primary key not null check (length(id) = 36),
    aud text not null default '',
    -- GoTrue's `role` column: the admin group name here makes an API admin.
    role text not null default '',
    email text not null collate nocase check (length(email) between 1 and 320),
    -- PHC string; null means "no password yet" (invited or admin-created): such a user cannot log in.
    password_hash text,
    confirmed_at integer,
    invited_at integer,
    confirmation_sent_at integer,
    recovery_sent_at integer,
    -- A pending email change (`new_email` in the JSON).
    email_change text,
    email_change_sent_at integer,
    last_sign_in_at integer,
    banned_until integer,
    app_metadata text not null default '{}' check (json_valid(app_metadata) and json_type(app_metadata) = 'object'),
    user_metadata text not null default '{}' check (json_valid(user_metadata) and json_type(user_metadata) = 'object'),
    created_at integer not null,
    updated_at integer not null
) strict;

-- DESIGN §4.1: one account per address and audience, compared case-insensitively.
create unique index users_aud_email on users (aud, email collate nocase);
create index users_aud_created_at on users (aud, created_at, id);

create table refresh_tokens (
    id integer primary key autoincrement,
    -- SHA-256 of the token; the token itself is never stored (DESIGN §4.2).
    digest blob not null unique check (length(digest) = 32),
    user_id text not null references users (id) on delete cascade,
    -- Every token rotated from one login shares the family: reuse detection revokes it whole.
    family_id text not null,
    parent_id integer references refresh_tokens (id) on delete set null,
    -- Set when the token is rotated (its successor exists) or revoked.
    rotated_at integer,
    revoked_at integer,
    created_at integer not null
) strict;

create index refresh_tokens_user on refresh_tokens (user_id, created_at);
create index refresh_tokens_family on refresh_tokens (family_id);
create index refresh_tokens_parent on refresh_tokens (parent_id);

create table one_time_tokens (
    -- SHA-256 of the token mailed to the user.
    digest blob primary key not null check (length(digest) = 32),
    user_id text not null references users (id) on delete cascade,
    purpose text not null check (purpose in ('confirmation', 'recovery', 'invite', 'email_change')),
    -- The address an email-change token confirms; null for the other purposes.
    new_email text,
    created_at integer not null,
    expires_at integer not null,
    used_at integer
) strict;

create index one_time_tokens_user on one_time_tokens (user_id, purpose);

create table audit_log_entries (
    id text primary key not null check (length(id) = 36),
    -- The acting user id, '0' for the system token, 'operator' for the operator token.
    actor_id text not null,
    actor_email text not null default '',
    action text not null,
    log_type text not null check (log_type in ('account', 'team', 'token', 'user')),
    -- JSON object with the action's details (target user, reason, ...); never secrets.
    traits text not null default '{}' check (json_valid(traits)),
    created_at integer not null
) strict;

create index audit_log_entries_created_at on audit_log_entries (created_at, id);
