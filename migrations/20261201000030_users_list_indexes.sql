-- Issue 10: the console's users lists, their filters and their searches over 1,000,000 users,
-- each answered from an index instead of a scan of the table (BENCHMARKS.md, console users).

-- `status=unconfirmed`: the partial index holds only those users, in list order. The list and
-- count statements repeat its predicate literally so that SQLite can use it.
create index users_unconfirmed on users (aud, created_at, id, confirmed_at) where confirmed_at is null;

-- `status=admins` (`role` = GOTRUE_JWT_ADMIN_GROUP_NAME): only users with a role, by role.
create index users_role on users (aud, role, created_at, id) where role <> '';

-- `status=banned`: banned now means `banned_until` in the future or an `app_metadata.roles` entry
-- starting with "banned" in any case (DESIGN §5, `domain::user::User::is_banned`). "Now" moves,
-- so no index can hold exactly the banned users; this one holds the candidates: every user with
-- a `banned_until` (expired ones included) or a banned role, and the statements check
-- `banned_until > now` on its entries without reading the table.
-- The role half lives in `has_banned_role`, kept by the triggers below from `app_metadata`, so
-- that no statement parses JSON per row. Its rule is `domain::user::is_banned_role` in SQL: a
-- string entry of the `roles` list whose first six characters are "banned", ASCII
-- case-insensitively (tests/api/user_lists_show_exactly_the_users_the_rule_matches.rs checks both agree).
alter table users add column has_banned_role integer not null default 0 check (has_banned_role in (0, 1));

update users set has_banned_role = 1
where json_type(app_metadata, '$.roles') = 'array'
  and exists (select 1 from json_each(users.app_metadata, '$.roles') r
              where r.type = 'text' and lower(substr(r.value, 1, 6)) = 'banned');

create trigger users_banned_role_insert after insert on users
when json_type(new.app_metadata, '$.roles') = 'array'
begin
    update users set has_banned_role = exists (
        select 1 from json_each(new.app_metadata, '$.roles') r
        where r.type = 'text' and lower(substr(r.value, 1, 6)) = 'banned')
    where rowid = new.rowid;
end;

create trigger users_banned_role_update after update of app_metadata on users
when old.app_metadata is not new.app_metadata
begin
    update users set has_banned_role = exists (
        select 1 from json_each(new.app_metadata, '$.roles') r
        where json_type(new.app_metadata, '$.roles') = 'array'
          and r.type = 'text' and lower(substr(r.value, 1, 6)) = 'banned')
    where rowid = new.rowid;
end;

create index users_banned on users (aud, created_at, id, banned_until, has_banned_role)
where banned_until is not null or has_banned_role = 1;

-- Searches: part of the mailbox key or of `user_metadata.full_name`. A `like '%…%'` cannot
-- seek a b-tree, so a search scanned the `users_search` index (about 0.3 s at 1M users).
-- FTS5's trigram tokenizer indexes every three-character substring, so a query of three or
-- more characters finds its candidates by index. Contentless (`content=''`): the table keeps
-- only the index, the list statements read the row by rowid and apply the exact `like` rule
-- (ASCII case-insensitive, as before) to the candidates, which the tokenizer's Unicode case
-- folding makes a superset. Shorter queries still scan `users_search`, kept for them.
-- The rowid links both tables: `users` has no integer primary key, but SQLite keeps its rowids
-- across VACUUM (its transfer copy preserves them) and nothing here writes a rowid.
-- PostgreSQL instead: `create extension pg_trgm` and GIN indexes
-- `using gin (email_key gin_trgm_ops)` and `using gin ((user_metadata ->> 'full_name') gin_trgm_ops)`,
-- which serve the same `like`/`ilike '%…%'` directly, with no side table or triggers.
create virtual table users_fts using fts5 (email_key, full_name, content = '', tokenize = 'trigram');

insert into users_fts (rowid, email_key, full_name)
select rowid, email_key, json_extract(user_metadata, '$.full_name') from users;

-- A contentless table forgets a row only when told the values it indexed: each trigger passes
-- the old row's, computed the same way as on insert.
create trigger users_fts_insert after insert on users
begin
    insert into users_fts (rowid, email_key, full_name)
    values (new.rowid, new.email_key, json_extract(new.user_metadata, '$.full_name'));
end;

create trigger users_fts_delete after delete on users
begin
    insert into users_fts (users_fts, rowid, email_key, full_name)
    values ('delete', old.rowid, old.email_key, json_extract(old.user_metadata, '$.full_name'));
end;

create trigger users_fts_update after update of email_key, user_metadata on users
when old.email_key is not new.email_key
  or json_extract(old.user_metadata, '$.full_name') is not json_extract(new.user_metadata, '$.full_name')
begin
    insert into users_fts (users_fts, rowid, email_key, full_name)
    values ('delete', old.rowid, old.email_key, json_extract(old.user_metadata, '$.full_name'));
    insert into users_fts (rowid, email_key, full_name)
    values (new.rowid, new.email_key, json_extract(new.user_metadata, '$.full_name'));
end;
