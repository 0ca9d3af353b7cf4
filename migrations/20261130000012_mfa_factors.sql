-- Multi-factor authentication (supabase/auth's `mfa_factors`, `mfa_challenges` and the
-- session's `aal`): TOTP factors a user enrolls, the challenges a verify answers, and the
-- assurance level each session has reached (README "Multi-factor authentication").
create table mfa_factors (
    id text primary key not null check (length(id) = 36),
    user_id text not null references users (id) on delete cascade,
    friendly_name text,
    factor_type text not null check (factor_type in ('totp')),
    status text not null check (status in ('unverified', 'verified')),
    -- XChaCha20-Poly1305 of the TOTP key: 24-byte nonce, then ciphertext and tag. The key is
    -- derived from the JWT secret, so a copy of the database alone does not give the codes.
    secret blob not null check (length(secret) > 40),
    -- The last TOTP time step accepted: a code is single-use, so only later steps pass.
    last_used_step integer,
    last_challenged_at integer,
    created_at integer not null,
    updated_at integer not null
) strict;

create index mfa_factors_user on mfa_factors (user_id, status);

create table mfa_challenges (
    id text primary key not null check (length(id) = 36),
    factor_id text not null references mfa_factors (id) on delete cascade,
    ip_address text not null,
    created_at integer not null,
    -- Set once, when a code answered it: a challenge is single-use.
    verified_at integer
) strict;

create index mfa_challenges_factor on mfa_challenges (factor_id, created_at);

-- The session's authenticator assurance level and how it got there (the `amr` claim).
alter table sessions add column aal text not null default 'aal1' check (aal in ('aal1', 'aal2'));
-- The first factor: 'password', or the one-time link that started the session.
alter table sessions add column sign_in_method text not null default 'password';
-- The factor that raised it to aal2, and when.
alter table sessions add column factor_id text references mfa_factors (id) on delete set null;
alter table sessions add column aal2_at integer;

-- A console login waiting for its second step: the password was right, the code is due.
create table console_mfa_logins (
    -- SHA-256 of the pending-login cookie's value.
    digest blob primary key not null check (length(digest) = 32),
    user_id text not null references users (id) on delete cascade,
    created_at integer not null
) strict;

create index console_mfa_logins_user on console_mfa_logins (user_id);
