//! Every users list (search, status filter, both, any page) shows exactly the users the rule
//! matches, in list order, whichever index answers it, and stays so after updates and deletes.
//!
//! The rule, as it stood before the lists had indexes of their own (issue 10): a search matches
//! part of the mailbox key (`mailbox_key` of both sides) or part of `user_metadata.full_name`
//! (SQLite's `like`: ASCII letters in any case, `%` and `_` literal); `banned` is
//! `User::is_banned`, `unconfirmed` no `confirmed_at`, `admins` the role column.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use chipflap::domain::email_address::mailbox_key;
use chipflap::domain::metadata::Metadata;
use chipflap::domain::user::User;
use chipflap::services::Actor;
use chipflap::services::admin_users::{
    self, BanChange, NewUser, UserChanges, UserQuery, UserStatus, UserTotal,
};

use crate::console::{get_page, login_admin};
use crate::helpers::{TestApp, spawn_app};

const STATUSES: [UserStatus; 4] = [
    UserStatus::All,
    UserStatus::Unconfirmed,
    UserStatus::Banned,
    UserStatus::Admins,
];

/// `like '%needle%'` as SQLite compares: ASCII letters fold, everything else is exact.
fn like_contains(haystack: &str, needle: &str) -> bool {
    let fold = |s: &str| -> Vec<char> { s.chars().map(|c| c.to_ascii_lowercase()).collect() };
    let (h, n) = (fold(haystack), fold(needle));
    n.is_empty() || h.windows(n.len()).any(|w| w == n.as_slice())
}

fn rule_matches(user: &User, search: Option<&str>, status: UserStatus, app: &TestApp) -> bool {
    let now = app.clock.now();
    let found = search.is_none_or(|q| {
        like_contains(&mailbox_key(&user.email), &mailbox_key(q))
            || user
                .user_metadata
                .get("full_name")
                .and_then(|v| v.as_str())
                .is_some_and(|name| like_contains(name, q))
    });
    found
        && match status {
            UserStatus::All => true,
            UserStatus::Unconfirmed => !user.is_confirmed(),
            UserStatus::Banned => user.is_banned(now),
            UserStatus::Admins => user.is_admin(&app.state.settings.jwt.admin_group),
        }
}

async fn all_users(app: &TestApp, ids: &[Uuid]) -> Vec<User> {
    let mut users = Vec::new();
    for id in ids {
        users.push(admin_users::get_user(&app.state, *id).await.unwrap());
    }
    // List order: newest first, then by id.
    users.sort_by_key(|u| std::cmp::Reverse((u.created_at, u.id.to_string())));
    users
}

fn query(search: Option<&str>, status: UserStatus, page: u32, per_page: u32) -> UserQuery {
    UserQuery {
        aud: String::new(),
        filter: search.map(str::to_owned),
        status,
        ascending: false,
        page,
        per_page,
        count_cap: None,
    }
}

/// Checks every search × status against the rule: the whole list, its count, and its pages.
async fn check_lists(app: &TestApp, ids: &[Uuid], searches: &[&str]) {
    let users = all_users(app, ids).await;
    let mut queries: Vec<Option<&str>> = vec![None];
    queries.extend(searches.iter().map(|s| Some(*s)));
    for search in queries {
        for status in STATUSES {
            let expected: Vec<String> = users
                .iter()
                .filter(|u| rule_matches(u, search, status, app))
                .map(|u| u.email.clone())
                .collect();
            let page = admin_users::list_users(&app.state, &query(search, status, 1, 1000)).await;
            let page = page.unwrap();
            let listed: Vec<String> = page.users.iter().map(|u| u.email.clone()).collect();
            assert_eq!(listed, expected, "search {search:?}, status {status:?}");
            assert_eq!(
                page.total,
                UserTotal::Exact(expected.len() as i64),
                "count of {search:?}, {status:?}"
            );
            // The second page of three: the offset skips exactly the first.
            let second = admin_users::list_users(&app.state, &query(search, status, 2, 3)).await;
            let second: Vec<String> = second
                .unwrap()
                .users
                .iter()
                .map(|u| u.email.clone())
                .collect();
            let want: Vec<String> = expected.iter().skip(3).take(3).cloned().collect();
            assert_eq!(second, want, "page 2 of {search:?}, {status:?}");
        }
    }
}

fn metadata(value: serde_json::Value) -> Metadata {
    match value {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

async fn create(
    app: &TestApp,
    email: &str,
    name: Option<&str>,
    roles: &[&str],
    confirm: bool,
) -> Uuid {
    let user = admin_users::create_user(
        &app.state,
        &Actor::command_line(),
        NewUser {
            email: email.into(),
            confirm,
            user_metadata: name.map(|n| metadata(json!({"full_name": n}))),
            app_metadata: (!roles.is_empty()).then(|| metadata(json!({"roles": roles}))),
            ..NewUser::default()
        },
    )
    .await
    .unwrap();
    user.id
}

const SEARCHES: &[&str] = &[
    "a",
    "ex",
    "EXAMPLE",
    "chloé",
    "CHLOÉ",
    "Chloe",
    "müller",
    "MÜLLER",
    "ääkk",
    "ÄÄKKÖ",
    "straße",
    "STRASSE",
    "100%",
    "a_b",
    "a%b",
    "_",
    "%",
    "o'b",
    "\"quote",
    "nobody-matches-this",
    "@example.org",
    "ada lovelace",
    "e\u{301}",
];

#[tokio::test]
async fn searches_and_filters_list_exactly_the_users_of_the_rule() {
    let app = spawn_app().await;
    let state = app.state.clone();
    let mut ids = Vec::new();
    for (email, name, roles, confirm) in [
        ("ada@example.org", Some("Ada Lovelace"), &[][..], true),
        ("chloe.dubois@example.org", Some("Chloé Dubois"), &[], true),
        ("CHLOE@Example.org", Some("CHLOÉ"), &["editor"], false),
        (
            "mueller@example.org",
            Some("Jürgen Müller"),
            &["Banned"],
            true,
        ),
        (
            "Ääkkönen@example.org",
            Some("Ääkkönen"),
            &["BANNED-spam"],
            true,
        ),
        (
            "strasse@example.org",
            Some("Straße"),
            &["unbanned", "ban"],
            true,
        ),
        ("a_b@example.org", Some("100% sure"), &[], false),
        ("axb@example.org", Some("a%b"), &[], true),
        ("obrien@example.org", Some("O'Brien \"quote\""), &[], true),
        (
            "e-acute@example.org",
            Some("Re\u{301}sume\u{301}"),
            &[],
            true,
        ),
        ("nameless@example.org", None, &[], true),
    ] {
        ids.push(create(&app, email, name, roles, confirm).await);
    }
    app.admin_user("boss@example.org").await;
    ids.push(
        admin_users::find_by_email(&state, "boss@example.org")
            .await
            .unwrap()
            .id,
    );
    // A ban by date, and one that will have run out.
    for (i, hours) in [(0, 48), (1, 1)] {
        admin_users::update_user(
            &state,
            &Actor::command_line(),
            ids[i],
            UserChanges {
                ban: Some(BanChange::For(Duration::from_secs(hours * 3600))),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    }
    check_lists(&app, &ids, SEARCHES).await;
    app.advance(Duration::from_secs(2 * 3600));
    check_lists(&app, &ids, SEARCHES).await;

    // Updates: a new name, a new address, roles added and removed; then deletes.
    admin_users::update_user(
        &state,
        &Actor::command_line(),
        ids[1],
        UserChanges {
            user_metadata: Some(metadata(json!({"full_name": "Zoë Nakamura"}))),
            email: Some("zoe.nakamura@example.net".into()),
            ..UserChanges::default()
        },
    )
    .await
    .unwrap();
    admin_users::update_user(
        &state,
        &Actor::command_line(),
        ids[3],
        UserChanges {
            app_metadata: Some(metadata(json!({"roles": ["member"]}))),
            ..UserChanges::default()
        },
    )
    .await
    .unwrap();
    admin_users::update_user(
        &state,
        &Actor::command_line(),
        ids[0],
        UserChanges {
            app_metadata: Some(metadata(json!({"roles": ["bannedForever"]}))),
            user_metadata: Some(metadata(json!({"full_name": null}))),
            ..UserChanges::default()
        },
    )
    .await
    .unwrap();
    let deleted = ids.remove(5);
    admin_users::delete_user(&state, &Actor::command_line(), deleted)
        .await
        .unwrap();
    let mut after = SEARCHES.to_vec();
    after.extend([
        "nakamura", "zoe.nak", "Zoë", "dubois", "lovelace", "strasse", "Straße",
    ]);
    check_lists(&app, &ids, &after).await;
    // The old name and address are gone from the search index, the new ones found.
    let page =
        admin_users::list_users(&app.state, &query(Some("dubois@"), UserStatus::All, 1, 50)).await;
    assert!(page.unwrap().users.is_empty());
    let page =
        admin_users::list_users(&app.state, &query(Some("zoë naka"), UserStatus::All, 1, 50)).await;
    assert_eq!(page.unwrap().users.len(), 1);
}

/// A search common enough to walk the list order instead of reading every candidate (over ten
/// thousand candidates) lists and counts the same users as the rule, and the console says
/// "more than" past its cap.
#[tokio::test]
async fn common_searches_walk_the_list_order_and_cap_their_count() {
    let app = spawn_app().await;
    let mut tx = app.state.db.begin().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..10_100u32 {
        let id = Uuid::new_v4();
        // Every 7th user is unconfirmed, every 50th banned by role; every name has "bulk".
        let email = format!("bulk{i}@Example.org");
        let roles = if i % 50 == 0 {
            r#"{"roles":["banned"]}"#
        } else {
            "{}"
        };
        let confirmed = (i % 7 != 0).then_some(1_000_i64);
        sqlx::query(
            "insert into users (id, aud, role, email, email_key, confirmed_at, app_metadata,
                 user_metadata, created_at, updated_at) values (?, '', '', ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(&email)
        .bind(mailbox_key(&email))
        .bind(confirmed)
        .bind(roles)
        .bind(json!({"full_name": format!("Bulk User {i}")}).to_string())
        .bind(1_000 + i64::from(i % 300))
        .bind(1_000_i64)
        .execute(&mut *tx)
        .await
        .unwrap();
        ids.push(id);
    }
    tx.commit().await.unwrap();
    // Every user, newest first (the unfiltered list: one walk of the list order).
    let users = admin_users::list_users(&app.state, &query(None, UserStatus::All, 1, 20_000))
        .await
        .unwrap()
        .users;
    assert_eq!(users.len(), ids.len());
    for (search, status) in [
        ("bulk", UserStatus::All),
        ("BULK", UserStatus::Banned),
        ("example", UserStatus::Unconfirmed),
        ("user 1", UserStatus::All),
    ] {
        let expected: Vec<String> = users
            .iter()
            .filter(|u| rule_matches(u, Some(search), status, &app))
            .map(|u| u.email.clone())
            .collect();
        for page in [1, 7] {
            let listed =
                admin_users::list_users(&app.state, &query(Some(search), status, page, 50))
                    .await
                    .unwrap();
            let want: Vec<String> = expected
                .iter()
                .skip((page as usize - 1) * 50)
                .take(50)
                .cloned()
                .collect();
            let got: Vec<String> = listed.users.iter().map(|u| u.email.clone()).collect();
            assert_eq!(got, want, "{search} {status:?} page {page}");
            assert_eq!(listed.total, UserTotal::Exact(expected.len() as i64));
        }
    }
    login_admin(&app).await;
    let (_, html) = get_page(&app, "/users?q=bulk").await;
    assert!(html.contains("more than 10000 users matching"), "{html}");
    assert!(html.contains("Page 1<") && html.contains(r#"rel="next""#));
    let (_, html) = get_page(&app, "/users?q=bulk&status=banned").await;
    assert!(html.contains("202 users matching"), "{html}");
}
