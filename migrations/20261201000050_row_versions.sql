-- Issue 10: a version on each user and session row, for the refresh grant's optimistic check.
-- The grant reads the token, its session and its user before it waits for the write lock, then
-- rotates in one round trip only if neither row moved meanwhile (their versions are the ones it
-- read); otherwise it decides again on the rows as they are (services::token::refresh_grant).
-- Every update of a row adds one, whoever makes it (a statement here, the CLI, an sqlite3
-- shell): the triggers, not the statements, keep the count. The `when` clause keeps a
-- trigger's own update from firing it again. A deleted user or session cannot come back under
-- the same version unnoticed: deleting either deletes its refresh tokens (foreign keys).
-- PostgreSQL: the same columns, kept by a `before update` trigger function.
alter table users add column version integer not null default 0;
alter table sessions add column version integer not null default 0;

create trigger users_version after update on users
when new.version = old.version
begin
    update users set version = old.version + 1 where id = new.id;
end;

create trigger sessions_version after update on sessions
when new.version = old.version
begin
    update sessions set version = old.version + 1 where id = new.id;
end;
