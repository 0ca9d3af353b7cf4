-- Issue 10: a search combined with a status filter (`?q=gmail&status=banned`) walks that
-- status's partial index in list order and checks the search on the index entries alone. The
-- indexes of migration 20261201000030 held no search columns, so each entry cost a table row
-- (about 2 s at 1,000,000 users for a count). These replace them, with the mailbox key and the
-- full name last, as in `users_list_search`; the plain status lists use them the same way.
-- Each is built from its few rows (a second or less at 1M users).
-- PostgreSQL: the same partial b-trees, with `user_metadata ->> 'full_name'`.
-- Each holds the columns of its own predicate too (`confirmed_at` here): SQLite reads a partial
-- index alone only when every column the statement names is in it.
create index users_unconfirmed_search on users (aud, created_at, id, confirmed_at, email_key, json_extract(user_metadata, '$.full_name'))
where confirmed_at is null;
drop index users_unconfirmed;

create index users_banned_search on users (aud, created_at, id, banned_until, has_banned_role, email_key, json_extract(user_metadata, '$.full_name'))
where banned_until is not null or has_banned_role = 1;
drop index users_banned;

create index users_role_search on users (aud, role, created_at, id, email_key, json_extract(user_metadata, '$.full_name'))
where role <> '';
drop index users_role;
