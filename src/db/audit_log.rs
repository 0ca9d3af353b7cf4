//! The `audit_log_entries` table.

use sqlx::SqliteExecutor;
use uuid::Uuid;

pub use crate::domain::store::{AuditEntry, AuditFilter};
use crate::domain::timestamp::Timestamp;

/// The user an entry is about: the `user_id` trait when it names someone else, else the actor.
pub(super) fn subject_id(entry: &AuditEntry) -> &str {
    entry
        .traits
        .get("user_id")
        .and_then(|v| v.as_str())
        .unwrap_or(&entry.actor_id)
}

pub async fn append_audit_entry(
    executor: impl SqliteExecutor<'_>,
    entry: &AuditEntry,
) -> sqlx::Result<()> {
    let id = entry.id.to_string();
    let traits = entry.traits.to_string();
    let created_at = entry.created_at.unix();
    let subject_id = subject_id(entry);
    sqlx::query!(
        "insert into audit_log_entries (id, actor_id, actor_email, action, log_type, traits, subject_id, created_at)
         values (?, ?, ?, ?, ?, ?, ?, ?)",
        id,
        entry.actor_id,
        entry.actor_email,
        entry.action,
        entry.log_type,
        traits,
        subject_id,
        created_at
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// The most entries `append_audit_entries` takes in one call (the store contract's
/// `MAX_AUDIT_ENTRIES_PER_INSERT`): 8 bound values each stay far below SQLite's 32,766-variable
/// limit.
pub const MAX_ENTRIES_PER_INSERT: usize = crate::domain::store::MAX_AUDIT_ENTRIES_PER_INSERT;

/// Appends `entries` in their order (their rowids follow it, so entries of the same second
/// list in queue order) with ONE multi-row insert: one statement, so one transaction and one
/// WAL commit for the lot. Each keeps its own `created_at`. At most `MAX_ENTRIES_PER_INSERT`.
pub async fn append_audit_entries(
    executor: impl SqliteExecutor<'_>,
    entries: &[AuditEntry],
) -> sqlx::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    debug_assert!(entries.len() <= MAX_ENTRIES_PER_INSERT);
    let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "insert into audit_log_entries (id, actor_id, actor_email, action, log_type, traits, subject_id, created_at) ",
    );
    query.push_values(entries, |mut row, entry| {
        row.push_bind(entry.id.to_string())
            .push_bind(entry.actor_id.clone())
            .push_bind(entry.actor_email.clone())
            .push_bind(entry.action.clone())
            .push_bind(entry.log_type.clone())
            .push_bind(entry.traits.to_string())
            .push_bind(subject_id(entry).to_owned())
            .push_bind(entry.created_at.unix());
    });
    // Not kept in the connection's statement cache: each batch size is its own SQL text, and
    // up to 512 of them would evict the hot paths' prepared statements.
    query.build().persistent(false).execute(executor).await?;
    Ok(())
}

struct Row {
    id: String,
    actor_id: String,
    actor_email: String,
    action: String,
    log_type: String,
    traits: String,
    created_at: i64,
}

pub async fn list_audit_entries(
    executor: impl SqliteExecutor<'_>,
    filter: &AuditFilter,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<AuditEntry>> {
    let (author, action, log_type, user) = filter_params(filter);
    // About one user: seek the subject and actor indexes (SQLite unions the two) rather than
    // walking the whole log by date.
    let rows =
        match user {
            Some(user) => sqlx::query_as!(
                Row,
                r#"select id as "id!", actor_id, actor_email, action, log_type, traits, created_at
                   from audit_log_entries
                   where (subject_id = ?1 or actor_id = ?1)
                     and (?2 is null or actor_email like ?2 escape '\')
                     and (?3 is null or action = ?3)
                   order by created_at desc, rowid desc
                   limit ?4 offset ?5"#,
                user,
                author,
                action,
                limit,
                offset
            )
            .fetch_all(executor)
            .await?,
            None => sqlx::query_as!(
                Row,
                r#"select id as "id!", actor_id, actor_email, action, log_type, traits, created_at
                   from audit_log_entries
                   where (?1 is null or actor_email like ?1 escape '\')
                     and (?2 is null or action = ?2)
                     and (?3 is null or log_type = ?3)
                   order by created_at desc, rowid desc
                   limit ?4 offset ?5"#,
                author,
                action,
                log_type,
                limit,
                offset
            )
            .fetch_all(executor)
            .await?,
        };
    rows.into_iter()
        .map(|r| {
            Ok(AuditEntry {
                id: Uuid::parse_str(&r.id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                actor_id: r.actor_id,
                actor_email: r.actor_email,
                action: r.action,
                log_type: r.log_type,
                traits: serde_json::from_str(&r.traits)
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                created_at: Timestamp::from_unix(r.created_at),
            })
        })
        .collect()
}

pub async fn count_audit_entries(
    executor: impl SqliteExecutor<'_>,
    filter: &AuditFilter,
) -> sqlx::Result<i64> {
    let (author, action, log_type, user) = filter_params(filter);
    match user {
        Some(user) => {
            sqlx::query_scalar!(
                r#"select count(*) as "n!: i64" from audit_log_entries
                   where (subject_id = ?1 or actor_id = ?1)
                     and (?2 is null or actor_email like ?2 escape '\')
                     and (?3 is null or action = ?3)"#,
                user,
                author,
                action
            )
            .fetch_one(executor)
            .await
        }
        None => {
            sqlx::query_scalar!(
                r#"select count(*) as "n!: i64" from audit_log_entries
                   where (?1 is null or actor_email like ?1 escape '\')
                     and (?2 is null or action = ?2)
                     and (?3 is null or log_type = ?3)"#,
                author,
                action,
                log_type
            )
            .fetch_one(executor)
            .await
        }
    }
}

type FilterParams = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn filter_params(filter: &AuditFilter) -> FilterParams {
    match filter {
        AuditFilter::All => (None, None, None, None),
        AuditFilter::Author(a) => (Some(super::like_contains(a)), None, None, None),
        AuditFilter::Action(a) => (None, Some(a.clone()), None, None),
        AuditFilter::LogType(t) => (None, None, Some(t.clone()), None),
        AuditFilter::User(u) => (None, None, None, Some(u.to_string())),
        AuditFilter::Combined {
            author,
            action,
            user,
        } => (
            author.as_deref().map(super::like_contains),
            action.clone(),
            None,
            user.map(|u| u.to_string()),
        ),
    }
}
