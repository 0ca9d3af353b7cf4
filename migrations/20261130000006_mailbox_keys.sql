-- One account per mailbox (issue 8): `collate nocase` folds ASCII only, so `Ääkkönen@…` and
-- `ääkkönen@…` were two accounts. `email_key` holds the address's mailbox key (Unicode full case
-- folding and NFKC, `domain::email_address::mailbox_key`), which SQL cannot compute: rows
-- written before this migration keep a null key until the backfill that runs in Rust right
-- after the migrations (`db::users::backfill_email_keys`), which stops the start and lists
-- the accounts if two of them now share a key. Every write sets the key; nulls never collide.
alter table users add column email_key text;

drop index users_aud_email;
create unique index users_aud_email_key on users (aud, email_key);

-- Searches match part of the key (any spelling finds the account), so the covering index that
-- lets SQLite scan an index instead of every row (migration 4, BENCHMARKS.md) holds the key.
drop index users_search;
create index users_search on users (aud, email_key, json_extract(user_metadata, '$.full_name'), created_at, id);
