-- The password a signup chose, bound to that signup's confirmation link (issue 9, rule "the
-- mailbox owner decides the password"): confirming applies the hash of the link that was clicked,
-- so only a password typed by someone who can read the mailbox survives confirmation. A PHC
-- string (argon2id); null for every other link. Several confirmation links of one user may
-- coexist (one per signup, bounded by the service); confirming one deletes the others.
alter table one_time_tokens add column password_hash text;

-- Links mailed before this change keep what they did then: confirming applies the password the
-- account already has.
update one_time_tokens
set password_hash = (select users.password_hash from users where users.id = one_time_tokens.user_id)
where purpose = 'confirmation';
