-- Ties each access token to the session it was issued with, so "end my other sessions" (a
-- password change) knows which session is the caller's without guessing from timestamps.
-- SHA-256 of the access token issued together with this refresh token (or re-issued with it
-- inside the reuse grace window); null for rows written before this migration.
alter table refresh_tokens add column access_digest blob;

create index refresh_tokens_access_digest on refresh_tokens (access_digest);
