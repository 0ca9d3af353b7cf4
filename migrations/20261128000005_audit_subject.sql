-- The user an audit entry is about (the target named in its traits, else the actor), so a
-- user's history is an index seek instead of a scan of the whole log, which grows by one row
-- per Ably token issued.
alter table audit_log_entries add column subject_id text;

update audit_log_entries set subject_id = coalesce(json_extract(traits, '$.user_id'), actor_id);

create index audit_log_entries_subject on audit_log_entries (subject_id, created_at);
create index audit_log_entries_actor on audit_log_entries (actor_id, created_at);
