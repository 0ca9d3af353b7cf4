-- A mailed link whose mail has not yet been handed to the mail transport: 1 from the moment the
-- link is stored (inside the request's transaction) until the transport accepted the mail. A
-- server that starts finds the ones a dead process left behind (killed between its commit and
-- its mail) and forgets them together with their throttle stamps, so the user can ask again at
-- once instead of waiting out GOTRUE_SMTP_MAX_FREQUENCY for a mail that never went out.
alter table one_time_tokens add column mail_pending integer not null default 0 check (mail_pending in (0, 1));

create index one_time_tokens_mail_pending on one_time_tokens (user_id) where mail_pending = 1;
