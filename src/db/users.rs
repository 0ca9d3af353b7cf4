//! The `users` table.

use serde_json::Value;
use sqlx::{SqliteConnection, SqliteExecutor};

use crate::domain::email_address::mailbox_key;
use crate::domain::metadata::Metadata;
use crate::domain::password::PasswordHash;
pub use crate::domain::store::{
    ListPosition, MailboxCollision, PageStart, UserListPage, UserListQuery, UserStatus,
};
use crate::domain::timestamp::Timestamp;
use crate::domain::user::{User, UserId};

/// A `users` row as stored (`db::sessions` reads one joined to a refresh token).
pub(super) struct UserRow {
    pub(super) id: String,
    pub(super) aud: String,
    pub(super) role: String,
    pub(super) email: String,
    pub(super) password_hash: Option<String>,
    pub(super) confirmed_at: Option<i64>,
    pub(super) invited_at: Option<i64>,
    pub(super) confirmation_sent_at: Option<i64>,
    pub(super) recovery_sent_at: Option<i64>,
    pub(super) email_change: Option<String>,
    pub(super) email_change_sent_at: Option<i64>,
    pub(super) last_sign_in_at: Option<i64>,
    pub(super) banned_until: Option<i64>,
    pub(super) app_metadata: String,
    pub(super) user_metadata: String,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = sqlx::Error;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        let decode = |e: Box<dyn std::error::Error + Send + Sync>| sqlx::Error::Decode(e);
        let ts = |v: Option<i64>| v.map(Timestamp::from_unix);
        Ok(User {
            id: super::decode_user_id(&row.id)?,
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
    id: UserId,
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
    id: UserId,
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
    id: UserId,
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
    id: UserId,
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
    id: UserId,
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

pub async fn delete_user(executor: impl SqliteExecutor<'_>, id: UserId) -> sqlx::Result<bool> {
    let id = id.to_string();
    let done = sqlx::query!("delete from users where id = ?", id)
        .execute(executor)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Up to this many FTS5 candidates, a search reads them all by rowid, keeps the exact matches
/// and sorts them (its page and its count from one read); beyond, walking an index in list
/// order finds a page sooner (at most about `limit × users / FEW_CANDIDATES` index entries:
/// 25,000 for a page of 50 at 1,000,000 users). Measured at 1M: each candidate costs a few µs
/// (row, `like`), each walked index entry about 0.2 µs.
const FEW_CANDIDATES: usize = 2_000;

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
            if key == search.to_ascii_lowercase() {
                // The parts differ in ASCII case at most, which the tokenizer folds: one phrase
                // matched once against both columns reads each trigram's entries once instead
                // of twice (at 1M users `Maria S` 8 ms instead of 17, `Müller` 3 instead of 7).
                phrase(&key)
            } else {
                format!(
                    "email_key : {} OR full_name : {}",
                    phrase(&key),
                    phrase(search)
                )
            }
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

/// A page of users and the size of its list (counted up to `count_cap` when given).
///
/// Each list is read from an index in list order, its filters checked on the index entries:
/// `users_aud_created_at` for every user, one partial index per status (migration
/// 20261201000040, which also holds the search columns), `users_list_search` for a search over
/// every user; a search of three characters or more first asks FTS5 for its candidates, and
/// when they are few, reads just those. A keyset start ([`PageStart::After`], `Before`) seeks
/// its position in the same index. The statements are built by [`ListStatement`], which
/// names the index each one must use: SQLite refuses a statement whose index cannot serve it,
/// so a change that loses an index fails loudly instead of scanning.
pub async fn list_users(
    conn: &mut SqliteConnection,
    q: &UserListQuery<'_>,
    count_cap: Option<i64>,
) -> sqlx::Result<UserListPage> {
    let count_limit = count_cap.map_or(-1, |cap| cap.saturating_add(1));
    if q.status == UserStatus::Admins && q.admin_group.is_empty() {
        return Ok(UserListPage {
            users: Vec::new(),
            more: false,
            total: 0,
        });
    }
    let search = q.search.map(Search::new);
    let candidates = match search.as_ref().and_then(|s| s.fts.as_deref()) {
        Some(fts) => few_candidates(conn, fts).await?,
        None => None,
    };
    let (mut ids, total) = match (&search, candidates) {
        (Some(search), Some(rowids)) => {
            let (ids, total) = page_of_candidates(conn, q, search, &rowids).await?;
            let total = if count_limit < 0 {
                total
            } else {
                total.min(count_limit)
            };
            (ids, total)
        }
        (search, _) => {
            let statement = ListStatement::new(q, search.as_ref());
            let ids = statement.page(conn).await?;
            let total = match search {
                // Common matches over every user: the candidates in rowid order (the table's
                // own order), each checked, until the cap. With a status filter the statement
                // walks that status's partial index instead: at most the users of the status.
                Some(search @ Search { fts: Some(fts), .. }) if q.status == UserStatus::All => {
                    count_fts_matches(conn, q, search, fts, count_limit).await?
                }
                _ => statement.count(conn, count_limit).await?,
            };
            (ids, total)
        }
    };
    let limit = usize::try_from(q.limit).unwrap_or(0);
    let more = ids.len() > limit;
    ids.truncate(limit);
    if matches!(q.start, PageStart::Before(_)) {
        // Read backwards from the position: back into list order.
        ids.reverse();
    }
    Ok(UserListPage {
        users: users_by_ids(conn, &ids).await?,
        more,
        total,
    })
}

/// The FTS5 candidates of `fts` (their rowids) as a JSON array for `json_each`, when there are
/// at most `FEW_CANDIDATES`; `None` when there are more. One evaluation of the FTS5 query, whose
/// cost follows the index entries of its trigrams, not its matches: the page and its count
/// both come from these rowids.
async fn few_candidates(conn: &mut SqliteConnection, fts: &str) -> sqlx::Result<Option<String>> {
    let cap = FEW_CANDIDATES as i64 + 1;
    let rowids = sqlx::query_scalar!(
        r#"select rowid as "rowid!: i64" from users_fts where users_fts match ?1 limit ?2"#,
        fts,
        cap
    )
    .fetch_all(conn)
    .await?;
    if rowids.len() > FEW_CANDIDATES {
        return Ok(None);
    }
    serde_json::to_string(&rowids)
        .map(Some)
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// The page (ids in walk order, one more than the limit when more follow) and the exact count
/// of a search with few candidates: one statement reads every candidate's row by rowid (the
/// unary plus keeps SQLite from scanning an index on `aud` instead), keeps the exact matches
/// of search and status, and the sorting and paging happen here, on at most
/// `FEW_CANDIDATES` pairs.
async fn page_of_candidates(
    conn: &mut SqliteConnection,
    q: &UserListQuery<'_>,
    search: &Search,
    rowids: &str,
) -> sqlx::Result<(Vec<String>, i64)> {
    let mut sql = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "select created_at, id from users where rowid in (select value from json_each(",
    );
    sql.push_bind(rowids.to_owned()).push(")) and +aud = ");
    sql.push_bind(q.aud.to_owned());
    push_search(&mut sql, search);
    push_status(&mut sql, q);
    let mut matches: Vec<(i64, String)> = sql
        .build_query_as()
        .persistent(false)
        .fetch_all(&mut *conn)
        .await?;
    let total = i64::try_from(matches.len()).unwrap_or(i64::MAX);
    // Walk order: list order, or its reverse when reading backwards from a position.
    let descending = q.ascending == matches!(q.start, PageStart::Before(_));
    matches.sort_unstable();
    if descending {
        matches.reverse();
    }
    let limit = usize::try_from(q.limit.saturating_add(1)).unwrap_or(0);
    let page = match q.start {
        PageStart::Offset(offset) => {
            let offset = usize::try_from(offset).unwrap_or(usize::MAX);
            matches
                .into_iter()
                .skip(offset)
                .take(limit)
                .map(|(_, id)| id)
                .collect()
        }
        PageStart::After(p) | PageStart::Before(p) => {
            let at = (p.created_at.unix(), p.id.to_string());
            matches
                .into_iter()
                .filter(|m| if descending { *m < at } else { *m > at })
                .take(limit)
                .map(|(_, id)| id)
                .collect()
        }
    };
    Ok((page, total))
}

/// The count of a search over every user with many candidates: the FTS5 candidates in rowid
/// order (the table's own), each row checked exactly, up to `count_limit` matches.
async fn count_fts_matches(
    conn: &mut SqliteConnection,
    q: &UserListQuery<'_>,
    search: &Search,
    fts: &str,
    count_limit: i64,
) -> sqlx::Result<i64> {
    let (aud, key, name) = (q.aud, &search.key_pattern, &search.name_pattern);
    sqlx::query_scalar!(
        r#"select count(*) as "n!: i64" from
           (select 1 from users_fts f cross join users u on u.rowid = f.rowid
            where users_fts match ?4 and u.aud = ?1
              and (u.email_key like ?2 escape '\' or json_extract(u.user_metadata, '$.full_name') like ?3 escape '\')
            limit ?5)"#,
        aud,
        key,
        name,
        fts,
        count_limit
    )
    .fetch_one(conn)
    .await
}

/// `and (<mailbox key> like … or <full name> like …)`, the search rule.
fn push_search(sql: &mut sqlx::QueryBuilder<sqlx::Sqlite>, search: &Search) {
    sql.push(" and (email_key like ");
    sql.push_bind(search.key_pattern.clone());
    sql.push(r" escape '\' or json_extract(user_metadata, '$.full_name') like ");
    sql.push_bind(search.name_pattern.clone());
    sql.push(r" escape '\')");
}

/// The status rule, spelled with each partial index's own predicate (migration
/// 20261201000040) so that SQLite can use that index.
fn push_status(sql: &mut sqlx::QueryBuilder<sqlx::Sqlite>, q: &UserListQuery<'_>) {
    match q.status {
        UserStatus::All => {}
        UserStatus::Unconfirmed => {
            sql.push(" and confirmed_at is null");
        }
        UserStatus::Banned => {
            sql.push(" and (banned_until is not null or has_banned_role = 1) and (banned_until > ");
            sql.push_bind(q.now.unix());
            sql.push(" or has_banned_role = 1)");
        }
        UserStatus::Admins => {
            sql.push(" and role <> '' and role = ");
            sql.push_bind(q.admin_group.to_owned());
        }
    }
}

/// One list statement that walks an index in list order: which index, which filters, from
/// where. Every combination of status, search, direction and start is this one statement
/// with parts left out, so the plans differ only in the index named.
struct ListStatement<'q, 'a> {
    q: &'q UserListQuery<'a>,
    search: Option<&'q Search>,
}

impl<'q, 'a> ListStatement<'q, 'a> {
    fn new(q: &'q UserListQuery<'a>, search: Option<&'q Search>) -> Self {
        ListStatement { q, search }
    }

    /// The index in list order for the status; with a search, one that also holds the search
    /// columns, so that the walk never reads a table row.
    fn index(&self) -> &'static str {
        match (self.q.status, self.search.is_some()) {
            (UserStatus::All, false) => "users_aud_created_at",
            (UserStatus::All, true) => "users_list_search",
            (UserStatus::Unconfirmed, _) => "users_unconfirmed_search",
            (UserStatus::Banned, _) => "users_banned_search",
            (UserStatus::Admins, _) => "users_role_search",
        }
    }

    /// `select … from users indexed by … where` and every filter of the list.
    fn filtered(&self, select: &str) -> sqlx::QueryBuilder<sqlx::Sqlite> {
        let mut sql = sqlx::QueryBuilder::new(format!(
            "{select} from users indexed by {} where aud = ",
            self.index()
        ));
        sql.push_bind(self.q.aud.to_owned());
        push_status(&mut sql, self.q);
        if let Some(search) = self.search {
            push_search(&mut sql, search);
        }
        sql
    }

    /// The ids of the page in walk order (list order, reversed for `Before`), one more than
    /// the limit when more follow.
    async fn page(&self, conn: &mut SqliteConnection) -> sqlx::Result<Vec<String>> {
        // Not kept in the connection's statement cache: the combinations would evict the hot
        // paths' prepared statements, and preparing costs microseconds next to the walk.
        self.page_sql("")
            .build_query_scalar()
            .persistent(false)
            .fetch_all(conn)
            .await
    }

    /// The page statement, after `prefix` (`explain query plan ` in the tests).
    fn page_sql(&self, prefix: &str) -> sqlx::QueryBuilder<sqlx::Sqlite> {
        let q = self.q;
        let descending = q.ascending == matches!(q.start, PageStart::Before(_));
        let mut sql = self.filtered(&format!("{prefix}select id"));
        let (position, offset) = match q.start {
            PageStart::Offset(offset) => (None, offset),
            PageStart::After(p) | PageStart::Before(p) => (Some(p), 0),
        };
        if let Some(p) = position {
            // A row value: SQLite and PostgreSQL both seek it as one range of the index.
            sql.push(if descending {
                " and (created_at, id) < ("
            } else {
                " and (created_at, id) > ("
            });
            sql.push_bind(p.created_at.unix());
            sql.push(", ");
            sql.push_bind(p.id.to_string());
            sql.push(")");
        }
        let direction = if descending { "desc" } else { "asc" };
        sql.push(format!(
            " order by created_at {direction}, id {direction} limit "
        ));
        sql.push_bind(q.limit.saturating_add(1));
        sql.push(" offset ");
        sql.push_bind(offset);
        sql
    }

    /// How many users the list holds, up to `count_limit` (-1: no limit).
    async fn count(&self, conn: &mut SqliteConnection, count_limit: i64) -> sqlx::Result<i64> {
        self.count_sql("", count_limit)
            .build_query_scalar()
            .persistent(false)
            .fetch_one(conn)
            .await
    }

    /// The count statement, after `prefix`.
    fn count_sql(&self, prefix: &str, count_limit: i64) -> sqlx::QueryBuilder<sqlx::Sqlite> {
        let mut sql = self.filtered(&format!("{prefix}select count(*) from (select 1"));
        sql.push(" limit ");
        sql.push_bind(count_limit);
        sql.push(")");
        sql
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    /// Every list statement, in every combination of status, search, direction and start,
    /// walks its index in list order and reads nothing else: no table row, no table scan and
    /// no sort of the matches (SQLite would
    /// refuse `indexed by` an index it cannot use at all, but would still sort after using it).
    /// The plans come from the bundled SQLite the server runs.
    #[tokio::test]
    async fn list_statements_walk_their_index_in_list_order() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        crate::db::MIGRATOR.run(&mut conn).await.unwrap();
        let search = Search::new("nakamura");
        let position = ListPosition {
            created_at: Timestamp::from_unix(1_000),
            id: UserId::from(uuid::Uuid::nil()),
        };
        let statuses = [
            UserStatus::All,
            UserStatus::Unconfirmed,
            UserStatus::Banned,
            UserStatus::Admins,
        ];
        let starts = [
            PageStart::Offset(100),
            PageStart::After(position),
            PageStart::Before(position),
        ];
        for status in statuses {
            for searching in [false, true] {
                for ascending in [false, true] {
                    for start in starts {
                        let q = UserListQuery {
                            aud: "",
                            search: None,
                            status,
                            admin_group: "admin",
                            now: Timestamp::from_unix(1_000),
                            ascending,
                            limit: 50,
                            start,
                        };
                        let statement = ListStatement::new(&q, searching.then_some(&search));
                        let label =
                            format!("{status:?} search {searching} asc {ascending} {start:?}");
                        for mut sql in [
                            statement.page_sql("explain query plan "),
                            statement.count_sql("explain query plan ", 10_001),
                        ] {
                            let plan: Vec<(i64, i64, i64, String)> =
                                sql.build_query_as().fetch_all(&mut conn).await.unwrap();
                            let plan: Vec<&str> = plan.iter().map(|r| r.3.as_str()).collect();
                            let index = statement.index();
                            assert!(
                                plan.iter().any(|step| step.starts_with(&format!(
                                    "SEARCH users USING COVERING INDEX {index} (aud=?"
                                ))),
                                "{label}: {plan:?}"
                            );
                            assert!(
                                !plan.iter().any(|step| step.contains("TEMP B-TREE")
                                    || step.starts_with("SCAN users")),
                                "{label}: {plan:?}"
                            );
                            if !matches!(start, PageStart::Offset(_)) && plan.len() == 1 {
                                // The page seeks its position: a range of the index.
                                assert!(plan[0].contains("(created_at,id)"), "{label}: {plan:?}");
                            }
                        }
                    }
                }
            }
        }
    }
}
