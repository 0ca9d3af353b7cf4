//! The `users` table.

use serde_json::Value;
use sqlx::{SqliteConnection, SqliteExecutor};
use uuid::Uuid;

use crate::domain::email_address::mailbox_key;
use crate::domain::metadata::Metadata;
use crate::domain::password::PasswordHash;
use crate::domain::timestamp::Timestamp;
use crate::domain::user::User;

struct UserRow {
    id: String,
    aud: String,
    role: String,
    email: String,
    password_hash: Option<String>,
    confirmed_at: Option<i64>,
    invited_at: Option<i64>,
    confirmation_sent_at: Option<i64>,
    recovery_sent_at: Option<i64>,
    email_change: Option<String>,
    email_change_sent_at: Option<i64>,
    last_sign_in_at: Option<i64>,
    banned_until: Option<i64>,
    app_metadata: String,
    user_metadata: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = sqlx::Error;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        let decode = |e: Box<dyn std::error::Error + Send + Sync>| sqlx::Error::Decode(e);
        let ts = |v: Option<i64>| v.map(Timestamp::from_unix);
        Ok(User {
            id: Uuid::parse_str(&row.id).map_err(|e| decode(Box::new(e)))?,
            aud: row.aud,
            role: row.role,
            email: row.email,
            password_hash: row.password_hash.map(PasswordHash::from_phc),
            confirmed_at: ts(row.confirmed_at),
            invited_at: ts(row.invited_at),
            confirmation_sent_at: ts(row.confirmation_sent_at),
            recovery_sent_at: ts(row.recovery_sent_at),
            new_email: row.email_change,
            email_change_sent_at: ts(row.email_change_sent_at),
            last_sign_in_at: ts(row.last_sign_in_at),
            banned_until: ts(row.banned_until),
            app_metadata: parse_metadata(&row.app_metadata).map_err(decode)?,
            user_metadata: parse_metadata(&row.user_metadata).map_err(decode)?,
            created_at: Timestamp::from_unix(row.created_at),
            updated_at: Timestamp::from_unix(row.updated_at),
        })
    }
}

fn parse_metadata(text: &str) -> Result<Metadata, Box<dyn std::error::Error + Send + Sync>> {
    match serde_json::from_str::<Value>(text)? {
        Value::Object(map) => Ok(map),
        // A literal `null` imported from GoTrue reads as empty (spec §9.3).
        Value::Null => Ok(Metadata::new()),
        _ => Err("metadata is not a JSON object".into()),
    }
}

fn metadata_text(m: &Metadata) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".to_owned())
}

/// Inserts a new user; a second account for the same mailbox key and audience is a unique
/// violation for the caller to map.
pub async fn insert_user(executor: impl SqliteExecutor<'_>, user: &User) -> sqlx::Result<()> {
    let id = user.id.to_string();
    let email_key = mailbox_key(&user.email);
    let password_hash = user.password_hash.as_ref().map(PasswordHash::as_str);
    let app_metadata = metadata_text(&user.app_metadata);
    let user_metadata = metadata_text(&user.user_metadata);
    let confirmed_at = user.confirmed_at.map(Timestamp::unix);
    let invited_at = user.invited_at.map(Timestamp::unix);
    let created_at = user.created_at.unix();
    let updated_at = user.updated_at.unix();
    sqlx::query!(
        "insert into users (id, aud, role, email, email_key, password_hash, confirmed_at,
             invited_at, app_metadata, user_metadata, created_at, updated_at)
         values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        id,
        user.aud,
        user.role,
        user.email,
        email_key,
        password_hash,
        confirmed_at,
        invited_at,
        app_metadata,
        user_metadata,
        created_at,
        updated_at,
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Writes every mutable column of `user` (services load, change the domain value, save).
/// A changed email whose mailbox key collides is a unique violation for the caller to map.
pub async fn update_user(executor: impl SqliteExecutor<'_>, user: &User) -> sqlx::Result<()> {
    let id = user.id.to_string();
    let email_key = mailbox_key(&user.email);
    let password_hash = user.password_hash.as_ref().map(PasswordHash::as_str);
    let app_metadata = metadata_text(&user.app_metadata);
    let user_metadata = metadata_text(&user.user_metadata);
    let confirmed_at = user.confirmed_at.map(Timestamp::unix);
    let invited_at = user.invited_at.map(Timestamp::unix);
    let confirmation_sent_at = user.confirmation_sent_at.map(Timestamp::unix);
    let recovery_sent_at = user.recovery_sent_at.map(Timestamp::unix);
    let email_change_sent_at = user.email_change_sent_at.map(Timestamp::unix);
    let last_sign_in_at = user.last_sign_in_at.map(Timestamp::unix);
    let banned_until = user.banned_until.map(Timestamp::unix);
    let updated_at = user.updated_at.unix();
    sqlx::query!(
        "update users set aud = ?, role = ?, email = ?, email_key = ?, password_hash = ?,
             confirmed_at = ?, invited_at = ?, confirmation_sent_at = ?, recovery_sent_at = ?, email_change = ?,
             email_change_sent_at = ?, last_sign_in_at = ?, banned_until = ?, app_metadata = ?,
             user_metadata = ?, updated_at = ?
         where id = ?",
        user.aud,
        user.role,
        user.email,
        email_key,
        password_hash,
        confirmed_at,
        invited_at,
        confirmation_sent_at,
        recovery_sent_at,
        user.new_email,
        email_change_sent_at,
        last_sign_in_at,
        banned_until,
        app_metadata,
        user_metadata,
        updated_at,
        id,
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Only `last_sign_in_at`: a login must not write back anything else it read earlier.
pub async fn record_sign_in(
    executor: impl SqliteExecutor<'_>,
    id: Uuid,
    now: Timestamp,
) -> sqlx::Result<()> {
    let id = id.to_string();
    let now = now.unix();
    sqlx::query!("update users set last_sign_in_at = ? where id = ?", now, id)
        .execute(executor)
        .await?;
    Ok(())
}

/// Replaces the password hash with a stronger hash of the same password, only while the row
/// still holds `old` (a password change that landed meanwhile wins). True when replaced.
pub async fn upgrade_password_hash(
    executor: impl SqliteExecutor<'_>,
    id: Uuid,
    old: &PasswordHash,
    new: &PasswordHash,
) -> sqlx::Result<bool> {
    let id = id.to_string();
    let (old, new) = (old.as_str(), new.as_str());
    let done = sqlx::query!(
        "update users set password_hash = ? where id = ? and password_hash = ?",
        new,
        id,
        old
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Only `confirmation_sent_at` (the mail throttle's stamp).
pub async fn set_confirmation_sent_at(
    executor: impl SqliteExecutor<'_>,
    id: Uuid,
    at: Option<Timestamp>,
) -> sqlx::Result<()> {
    let id = id.to_string();
    let at = at.map(Timestamp::unix);
    sqlx::query!(
        "update users set confirmation_sent_at = ? where id = ?",
        at,
        id
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Only `recovery_sent_at` (the mail throttle's stamp).
pub async fn set_recovery_sent_at(
    executor: impl SqliteExecutor<'_>,
    id: Uuid,
    at: Option<Timestamp>,
) -> sqlx::Result<()> {
    let id = id.to_string();
    let at = at.map(Timestamp::unix);
    sqlx::query!("update users set recovery_sent_at = ? where id = ?", at, id)
        .execute(executor)
        .await?;
    Ok(())
}

pub async fn find_user_by_id(
    executor: impl SqliteExecutor<'_>,
    id: Uuid,
) -> sqlx::Result<Option<User>> {
    let id = id.to_string();
    sqlx::query_as!(
        UserRow,
        r#"select id as "id!", aud, role, email, password_hash, confirmed_at, invited_at,
               confirmation_sent_at, recovery_sent_at, email_change, email_change_sent_at,
               last_sign_in_at, banned_until, app_metadata, user_metadata, created_at, updated_at
           from users where id = ?"#,
        id
    )
    .fetch_optional(executor)
    .await?
    .map(User::try_from)
    .transpose()
}

/// The account of `email`'s mailbox in the audience: any spelling of the address finds it
/// (its [`mailbox_key`]; spec §0 "Email match", widened from ASCII to Unicode by issue 8).
pub async fn find_user_by_email(
    executor: impl SqliteExecutor<'_>,
    aud: &str,
    email: &str,
) -> sqlx::Result<Option<User>> {
    let key = mailbox_key(email);
    sqlx::query_as!(
        UserRow,
        r#"select id as "id!", aud, role, email, password_hash, confirmed_at, invited_at,
               confirmation_sent_at, recovery_sent_at, email_change, email_change_sent_at,
               last_sign_in_at, banned_until, app_metadata, user_metadata, created_at, updated_at
           from users where aud = ? and email_key = ?"#,
        aud,
        key
    )
    .fetch_optional(executor)
    .await?
    .map(User::try_from)
    .transpose()
}

pub async fn delete_user(executor: impl SqliteExecutor<'_>, id: Uuid) -> sqlx::Result<bool> {
    let id = id.to_string();
    let done = sqlx::query!("delete from users where id = ?", id)
        .execute(executor)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Which users a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    All,
    Unconfirmed,
    /// Banned now: `banned_until` in the future or a `^banned` role
    /// (`domain::user::User::is_banned`; the role half is the `has_banned_role` column, which
    /// migration 20261201000030's triggers keep from `app_metadata`).
    Banned,
    /// `role` equals the admin group.
    Admins,
}

impl UserStatus {
    fn as_str(self) -> &'static str {
        match self {
            UserStatus::All => "all",
            UserStatus::Unconfirmed => "unconfirmed",
            UserStatus::Banned => "banned",
            UserStatus::Admins => "admins",
        }
    }
}

/// A page of users in one audience; shared by the admin API and the console.
#[derive(Debug, Clone)]
pub struct UserListQuery<'a> {
    pub aud: &'a str,
    /// Part of the email (compared by mailbox key, so any spelling finds it) or of
    /// `user_metadata.full_name` (ASCII case-insensitively).
    pub search: Option<&'a str>,
    pub status: UserStatus,
    pub admin_group: &'a str,
    pub now: Timestamp,
    /// Newest first unless set.
    pub ascending: bool,
    pub limit: i64,
    pub offset: i64,
}

/// Up to this many search candidates, a search page reads them all and sorts them; beyond, the
/// matches are common enough that walking the users newest first finds a page sooner (at most
/// about `limit × users / FEW_CANDIDATES` index entries: 25,000 for a page of 50 at 1,000,000
/// users). Measured at 1M: each candidate costs ~17 µs (FTS5 positions, row, `like`), each
/// walked index entry well under 1 µs.
const FEW_CANDIDATES: i64 = 2_000;

/// How a search finds its users: the two `like` patterns (the mailbox key's and the name's) and,
/// when both parts have the trigram tokenizer's three characters, the FTS5 query that finds a
/// superset of the matches by index.
struct Search {
    key_pattern: String,
    name_pattern: String,
    fts: Option<String>,
}

impl Search {
    fn new(search: &str) -> Self {
        let key = mailbox_key(search);
        // Each part as one FTS5 string (double quotes doubled): its trigrams, in sequence, in
        // that column. Fewer than three characters index nothing, and match nothing.
        let phrase = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let fts = (key.chars().count() >= 3 && search.chars().count() >= 3).then(|| {
            format!(
                "email_key : {} OR full_name : {}",
                phrase(&key),
                phrase(search)
            )
        });
        Search {
            key_pattern: super::like_contains(&key),
            name_pattern: super::like_contains(search),
            fts,
        }
    }
}

/// The users of one page, in the order of `ids`.
async fn users_by_ids(conn: &mut SqliteConnection, ids: &[String]) -> sqlx::Result<Vec<User>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = serde_json::to_string(ids).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let rows = sqlx::query_as!(
        UserRow,
        r#"select id as "id!", aud, role, email, password_hash, confirmed_at, invited_at,
               confirmation_sent_at, recovery_sent_at, email_change, email_change_sent_at,
               last_sign_in_at, banned_until, app_metadata, user_metadata, created_at, updated_at
           from users where id in (select value from json_each(?1))"#,
        list
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut users = rows
        .into_iter()
        .map(User::try_from)
        .collect::<sqlx::Result<Vec<User>>>()?;
    users.sort_by_key(|u| {
        let id = u.id.to_string();
        ids.iter().position(|i| *i == id)
    });
    Ok(users)
}

/// A page of users. Each filter reads its own index (migration 20261201000030): the list order
/// for all users, a partial index per status, FTS5 trigrams for searches of three characters or
/// more; the statements name each index's predicate literally so that SQLite can use it.
pub async fn list_users(
    conn: &mut SqliteConnection,
    q: &UserListQuery<'_>,
) -> sqlx::Result<Vec<User>> {
    let ids = match q.search {
        None => list_ids_by_status(conn, q).await?,
        Some(search) => list_ids_by_search(conn, q, &Search::new(search)).await?,
    };
    users_by_ids(conn, &ids).await
}

async fn list_ids_by_status(
    conn: &mut SqliteConnection,
    q: &UserListQuery<'_>,
) -> sqlx::Result<Vec<String>> {
    let (aud, limit, offset, now) = (q.aud, q.limit, q.offset, q.now.unix());
    let admin_group = q.admin_group;
    if q.status == UserStatus::Admins && admin_group.is_empty() {
        return Ok(Vec::new());
    }
    let conn = &mut *conn;
    match (q.status, q.ascending) {
        (UserStatus::All, true) => {
            sqlx::query_scalar!(
                r#"select id as "id!" from users where aud = ?1
               order by created_at asc, id asc limit ?2 offset ?3"#,
                aud,
                limit,
                offset
            )
            .fetch_all(conn)
            .await
        }
        (UserStatus::All, false) => {
            sqlx::query_scalar!(
                r#"select id as "id!" from users where aud = ?1
               order by created_at desc, id desc limit ?2 offset ?3"#,
                aud,
                limit,
                offset
            )
            .fetch_all(conn)
            .await
        }
        (UserStatus::Unconfirmed, true) => {
            sqlx::query_scalar!(
                r#"select id as "id!" from users where aud = ?1 and confirmed_at is null
               order by created_at asc, id asc limit ?2 offset ?3"#,
                aud,
                limit,
                offset
            )
            .fetch_all(conn)
            .await
        }
        (UserStatus::Unconfirmed, false) => {
            sqlx::query_scalar!(
                r#"select id as "id!" from users where aud = ?1 and confirmed_at is null
               order by created_at desc, id desc limit ?2 offset ?3"#,
                aud,
                limit,
                offset
            )
            .fetch_all(conn)
            .await
        }
        (UserStatus::Banned, true) => {
            sqlx::query_scalar!(
                r#"select id as "id!" from users
               where aud = ?1 and (banned_until is not null or has_banned_role = 1)
                 and (banned_until > ?4 or has_banned_role = 1)
               order by created_at asc, id asc limit ?2 offset ?3"#,
                aud,
                limit,
                offset,
                now
            )
            .fetch_all(conn)
            .await
        }
        (UserStatus::Banned, false) => {
            sqlx::query_scalar!(
                r#"select id as "id!" from users
               where aud = ?1 and (banned_until is not null or has_banned_role = 1)
                 and (banned_until > ?4 or has_banned_role = 1)
               order by created_at desc, id desc limit ?2 offset ?3"#,
                aud,
                limit,
                offset,
                now
            )
            .fetch_all(conn)
            .await
        }
        (UserStatus::Admins, true) => {
            sqlx::query_scalar!(
                r#"select id as "id!" from users where aud = ?1 and role <> '' and role = ?4
               order by created_at asc, id asc limit ?2 offset ?3"#,
                aud,
                limit,
                offset,
                admin_group
            )
            .fetch_all(conn)
            .await
        }
        (UserStatus::Admins, false) => {
            sqlx::query_scalar!(
                r#"select id as "id!" from users where aud = ?1 and role <> '' and role = ?4
               order by created_at desc, id desc limit ?2 offset ?3"#,
                aud,
                limit,
                offset,
                admin_group
            )
            .fetch_all(conn)
            .await
        }
    }
}

/// The FTS5 candidates of `fts` (their rowids) as a JSON array for `json_each`, when there are
/// at most `FEW_CANDIDATES`; `None` when there are more. One evaluation of the FTS5 query, whose
/// cost follows the index entries of its trigrams, not its matches: the statements that follow
/// read the candidates by rowid instead of matching again.
async fn few_candidates(conn: &mut SqliteConnection, fts: &str) -> sqlx::Result<Option<String>> {
    let cap = FEW_CANDIDATES + 1;
    let rowids = sqlx::query_scalar!(
        r#"select rowid as "rowid!: i64" from users_fts where users_fts match ?1 limit ?2"#,
        fts,
        cap
    )
    .fetch_all(conn)
    .await?;
    if rowids.len() > FEW_CANDIDATES as usize {
        return Ok(None);
    }
    serde_json::to_string(&rowids)
        .map(Some)
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

// In the search statements, the status is a parameter (?5, with `now` ?6 and the admin group
// ?7): they read at most `FEW_CANDIDATES` rows or walk until a page is full, either way
// rows the exact rule must read.

async fn list_ids_by_search(
    conn: &mut SqliteConnection,
    q: &UserListQuery<'_>,
    search: &Search,
) -> sqlx::Result<Vec<String>> {
    let (aud, limit, offset, now) = (q.aud, q.limit, q.offset, q.now.unix());
    let (key, name, status, admin_group) = (
        &search.key_pattern,
        &search.name_pattern,
        q.status.as_str(),
        q.admin_group,
    );
    let few = match &search.fts {
        Some(fts) => few_candidates(conn, fts).await?,
        None => None,
    };
    let conn = &mut *conn;
    match (few, q.ascending) {
        // Few candidates: read them all by rowid (the unary plus keeps SQLite from scanning an
        // index on `aud` instead), keep the exact matches, sort them.
        (Some(rowids), true) => sqlx::query_scalar!(
            r#"select id as "id!" from users
               where rowid in (select value from json_each(?8)) and +aud = ?1
                 and (email_key like ?2 escape '\' or json_extract(user_metadata, '$.full_name') like ?3 escape '\')
                 and (?5 = 'all' or (?5 = 'unconfirmed' and confirmed_at is null)
                      or (?5 = 'banned' and (banned_until > ?6 or has_banned_role = 1))
                      or (?5 = 'admins' and ?7 <> '' and role = ?7))
               order by +created_at asc, +id asc limit ?4 offset ?9"#,
            aud, key, name, limit, status, now, admin_group, rowids, offset
        ).fetch_all(conn).await,
        (Some(rowids), false) => sqlx::query_scalar!(
            r#"select id as "id!" from users
               where rowid in (select value from json_each(?8)) and +aud = ?1
                 and (email_key like ?2 escape '\' or json_extract(user_metadata, '$.full_name') like ?3 escape '\')
                 and (?5 = 'all' or (?5 = 'unconfirmed' and confirmed_at is null)
                      or (?5 = 'banned' and (banned_until > ?6 or has_banned_role = 1))
                      or (?5 = 'admins' and ?7 <> '' and role = ?7))
               order by +created_at desc, +id desc limit ?4 offset ?9"#,
            aud, key, name, limit, status, now, admin_group, rowids, offset
        ).fetch_all(conn).await,
        // Common matches, or under three characters (no trigram to look up): walk the users
        // in list order until the page is full, reading `users_list_search` alone.
        (None, true) => sqlx::query_scalar!(
            r#"select id as "id!" from users indexed by users_list_search
               where aud = ?1
                 and (email_key like ?2 escape '\' or json_extract(user_metadata, '$.full_name') like ?3 escape '\')
                 and (?5 = 'all' or (?5 = 'unconfirmed' and confirmed_at is null)
                      or (?5 = 'banned' and (banned_until > ?6 or has_banned_role = 1))
                      or (?5 = 'admins' and ?7 <> '' and role = ?7))
               order by created_at asc, id asc limit ?4 offset ?8"#,
            aud, key, name, limit, status, now, admin_group, offset
        ).fetch_all(conn).await,
        (None, false) => sqlx::query_scalar!(
            r#"select id as "id!" from users indexed by users_list_search
               where aud = ?1
                 and (email_key like ?2 escape '\' or json_extract(user_metadata, '$.full_name') like ?3 escape '\')
                 and (?5 = 'all' or (?5 = 'unconfirmed' and confirmed_at is null)
                      or (?5 = 'banned' and (banned_until > ?6 or has_banned_role = 1))
                      or (?5 = 'admins' and ?7 <> '' and role = ?7))
               order by created_at desc, id desc limit ?4 offset ?8"#,
            aud, key, name, limit, status, now, admin_group, offset
        ).fetch_all(conn).await,
    }
}

/// How many users `list_users` would page through (limit and offset ignored), counting no
/// further than `cap` when given: the count of a common search reads every match, so the
/// console stops at a cap and says "more than" (an answer of `cap + 1` means "more than `cap`").
pub async fn count_users(
    conn: &mut SqliteConnection,
    q: &UserListQuery<'_>,
    cap: Option<i64>,
) -> sqlx::Result<i64> {
    let (aud, now, admin_group) = (q.aud, q.now.unix(), q.admin_group);
    let limit = cap.map_or(-1, |cap| cap.saturating_add(1));
    let conn = &mut *conn;
    let Some(search) = q.search.map(Search::new) else {
        return match q.status {
            UserStatus::All => sqlx::query_scalar!(
                r#"select count(*) as "n!: i64" from (select 1 from users where aud = ?1 limit ?2)"#,
                aud, limit
            ).fetch_one(conn).await,
            UserStatus::Unconfirmed => sqlx::query_scalar!(
                r#"select count(*) as "n!: i64" from
                   (select 1 from users where aud = ?1 and confirmed_at is null limit ?2)"#,
                aud, limit
            ).fetch_one(conn).await,
            UserStatus::Banned => sqlx::query_scalar!(
                r#"select count(*) as "n!: i64" from
                   (select 1 from users where aud = ?1 and (banned_until is not null or has_banned_role = 1)
                      and (banned_until > ?3 or has_banned_role = 1) limit ?2)"#,
                aud, limit, now
            ).fetch_one(conn).await,
            UserStatus::Admins if admin_group.is_empty() => Ok(0),
            UserStatus::Admins => sqlx::query_scalar!(
                r#"select count(*) as "n!: i64" from
                   (select 1 from users where aud = ?1 and role <> '' and role = ?3 limit ?2)"#,
                aud, limit, admin_group
            ).fetch_one(conn).await,
        };
    };
    let (key, name, status) = (&search.key_pattern, &search.name_pattern, q.status.as_str());
    let few = match &search.fts {
        Some(fts) => few_candidates(conn, fts).await?,
        None => None,
    };
    if let Some(rowids) = few {
        return sqlx::query_scalar!(
            r#"select count(*) as "n!: i64" from users
               where rowid in (select value from json_each(?7)) and +aud = ?1
                 and (email_key like ?2 escape '\' or json_extract(user_metadata, '$.full_name') like ?3 escape '\')
                 and (?4 = 'all' or (?4 = 'unconfirmed' and confirmed_at is null)
                      or (?4 = 'banned' and (banned_until > ?5 or has_banned_role = 1))
                      or (?4 = 'admins' and ?6 <> '' and role = ?6))"#,
            aud, key, name, status, now, admin_group, rowids
        )
        .fetch_one(conn)
        .await;
    }
    match &search.fts {
        // The candidates in rowid order (the table's own order), each row checked exactly.
        Some(fts) => sqlx::query_scalar!(
            r#"select count(*) as "n!: i64" from
               (select 1 from users_fts f cross join users u on u.rowid = f.rowid
                where users_fts match ?7 and u.aud = ?1
                  and (u.email_key like ?2 escape '\' or json_extract(u.user_metadata, '$.full_name') like ?3 escape '\')
                  and (?4 = 'all' or (?4 = 'unconfirmed' and u.confirmed_at is null)
                       or (?4 = 'banned' and (u.banned_until > ?5 or u.has_banned_role = 1))
                       or (?4 = 'admins' and ?6 <> '' and u.role = ?6))
                limit ?8)"#,
            aud, key, name, status, now, admin_group, fts, limit
        ).fetch_one(conn).await,
        None => sqlx::query_scalar!(
            r#"select count(*) as "n!: i64" from
               (select 1 from users indexed by users_list_search
                where aud = ?1
                  and (email_key like ?2 escape '\' or json_extract(user_metadata, '$.full_name') like ?3 escape '\')
                  and (?4 = 'all' or (?4 = 'unconfirmed' and confirmed_at is null)
                       or (?4 = 'banned' and (banned_until > ?5 or has_banned_role = 1))
                       or (?4 = 'admins' and ?6 <> '' and role = ?6))
                limit ?7)"#,
            aud, key, name, status, now, admin_group, limit
        ).fetch_one(conn).await,
    }
}

/// Accounts that would share a mailbox key once keyed: one audience, one key, two or more rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxCollision {
    pub aud: String,
    pub email_key: String,
    /// `(id, email as stored)`, oldest account first.
    pub accounts: Vec<(String, String)>,
}

/// Rows keyed per batch of the backfill: bounds its memory whatever the table's size.
const BACKFILL_BATCH: i64 = 500;

/// Gives every row written before migration `20261130000006` its mailbox key, which SQL cannot
/// compute. All or nothing, in one write transaction: when two accounts of one audience would
/// share a key, nothing is written and the groups are answered (never merged, never dropped),
/// so the caller can stop and report them. Answers how many rows were keyed.
pub async fn backfill_email_keys(
    pool: &sqlx::SqlitePool,
) -> sqlx::Result<Result<u64, Vec<MailboxCollision>>> {
    // At migration, before this process caches anything: no epoch to move.
    let mut tx = super::begin_write(pool, &Default::default()).await?;
    // Cheap once done: the partial scan finds no row.
    let pending: i64 =
        sqlx::query_scalar!(r#"select count(*) as "n!: i64" from users where email_key is null"#)
            .fetch_one(&mut *tx)
            .await?;
    if pending == 0 {
        return Ok(Ok(0));
    }
    // Runtime SQL: the temporary table is not in the schema the query macros check against.
    sqlx::query(
        "create temp table pending_email_keys (
             id text primary key not null, aud text not null, email_key text not null)",
    )
    .execute(&mut *tx)
    .await?;
    let mut after = String::new();
    loop {
        let rows = sqlx::query_as!(
            BackfillRow,
            r#"select id as "id!", aud, email from users
               where email_key is null and id > ? order by id limit ?"#,
            after,
            BACKFILL_BATCH
        )
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.id.clone();
        for row in &rows {
            sqlx::query("insert into pending_email_keys (id, aud, email_key) values (?, ?, ?)")
                .bind(&row.id)
                .bind(&row.aud)
                .bind(mailbox_key(&row.email))
                .execute(&mut *tx)
                .await?;
        }
    }
    let groups: Vec<(String, String)> = sqlx::query_as(
        "select aud, email_key from (
             select aud, email_key from pending_email_keys
             union all
             select aud, email_key from users where email_key is not null)
         group by aud, email_key having count(*) > 1
         order by aud, email_key",
    )
    .fetch_all(&mut *tx)
    .await?;
    if !groups.is_empty() {
        let mut collisions = Vec::with_capacity(groups.len());
        for (aud, email_key) in groups {
            let accounts: Vec<(String, String)> = sqlx::query_as(
                "select u.id, u.email from users u
                 left join pending_email_keys p on p.id = u.id
                 where u.aud = ? and coalesce(u.email_key, p.email_key) = ?
                 order by u.created_at, u.id",
            )
            .bind(&aud)
            .bind(&email_key)
            .fetch_all(&mut *tx)
            .await?;
            collisions.push(MailboxCollision {
                aud,
                email_key,
                accounts,
            });
        }
        tx.rollback().await?;
        return Ok(Err(collisions));
    }
    let keyed = sqlx::query(
        "update users set email_key =
             (select p.email_key from pending_email_keys p where p.id = users.id)
         where email_key is null",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("drop table pending_email_keys")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Ok(keyed))
}

struct BackfillRow {
    id: String,
    aud: String,
    email: String,
}

/// How many accounts each audience holds (a walk of `users_aud_created_at`).
pub async fn count_by_audience(
    executor: impl SqliteExecutor<'_>,
) -> sqlx::Result<Vec<(String, i64)>> {
    let rows = sqlx::query!(
        r#"select aud as "aud!", count(*) as "n!: i64" from users group by aud order by aud"#
    )
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(|r| (r.aud, r.n)).collect())
}
