-- Issue 10: a search with many matches (more than 2,000 FTS5 candidates, migration 30) walks the
-- users in list order until its page is full; with the mailbox key and full name in that order's
-- index, the walk reads the index alone, never a table row. It replaces `users_search`
-- (migration 6), whose only use, the scan for searches under three characters, this index
-- serves as well, in list order. PostgreSQL: the same b-tree, with `user_metadata ->> 'full_name'`.
create index users_list_search on users (aud, created_at, id, email_key, json_extract(user_metadata, '$.full_name'));
drop index users_search;
