//! Every users list (search, status filter, both, any page, by page number or by the keyset
//! cursor of the console's next and previous links) shows exactly the users the rule matches,
//! in list order, whichever index answers it, and stays so after updates and deletes.
//!
//! The rule, as it stood before the lists had indexes of their own (issue 10): a search matches
//! part of the mailbox key (`mailbox_key` of both sides) or part of `user_metadata.full_name`
//! (SQLite's `like`: ASCII letters in any case, `%` and `_` literal); `banned` is
//! `User::is_banned`, `unconfirmed` no `confirmed_at`, `admins` the role column.

use std::time::Duration;

use chipflap::domain::user::UserId;
use serde_json::json;

use chipflap::domain::email_address::mailbox_key;
use chipflap::domain::metadata::Metadata;
use chipflap::domain::user::User;
use chipflap::services::Actor;
use chipflap::services::admin_users::{
    self, BanChange, Cursor, ListPosition, NewUser, UserChanges, UserQuery, UserStatus, UserTotal,
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

async fn all_users(app: &TestApp, ids: &[UserId]) -> Vec<User> {
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
        from: None,
        count_cap: None,
    }
}

/// Walks the whole list page by page through keyset cursors (each page starts after the last
/// user of the one before), then back from the last page (each before the first user of the
/// one after), and checks both walks list exactly `expected`, in list order, with the right
/// "more" and "earlier" answers on the way.
async fn walk_by_cursor(
    app: &TestApp,
    search: Option<&str>,
    status: UserStatus,
    ascending: bool,
    per_page: u32,
    expected: &[String],
) {
    let label = format!("{search:?} {status:?} ascending {ascending}");
    let mut q = query(search, status, 1, per_page);
    q.ascending = ascending;
    let mut forward: Vec<User> = Vec::new();
    let mut pages = 0;
    loop {
        let page = admin_users::list_users(&app.state, &q).await.unwrap();
        pages += 1;
        assert_eq!(page.earlier, pages > 1, "{label}: earlier on page {pages}");
        assert!(page.users.len() <= per_page as usize, "{label}");
        let more = page.more;
        forward.extend(page.users);
        if !more {
            break;
        }
        let last = forward
            .last()
            .expect("a page with more after it is not empty");
        q.from = Some(Cursor::After(ListPosition::of(last)));
        q.page += 1;
    }
    let emails = |users: &[User]| users.iter().map(|u| u.email.clone()).collect::<Vec<_>>();
    assert_eq!(emails(&forward), expected, "{label}: forward walk");
    // Backwards from past the last user: the same users, page by page.
    let Some(last) = forward.last() else { return };
    let mut backward: Vec<User> = Vec::new();
    let mut from = Cursor::Before(ListPosition::of(last));
    backward.push(last.clone());
    loop {
        q.from = Some(from);
        let page = admin_users::list_users(&app.state, &q).await.unwrap();
        assert!(
            page.more,
            "{label}: a page before a position has one after it"
        );
        let earlier = page.earlier;
        let mut users = page.users;
        users.extend(backward);
        backward = users;
        if !earlier {
            break;
        }
        from = Cursor::Before(ListPosition::of(&backward[0]));
    }
    assert_eq!(emails(&backward), expected, "{label}: backward walk");
}

/// Checks every search × status against the rule: the whole list, its count, and its pages.
async fn check_lists(app: &TestApp, ids: &[UserId], searches: &[&str]) {
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
            walk_by_cursor(app, search, status, false, 3, &expected).await;
            let oldest_first: Vec<String> = expected.iter().rev().cloned().collect();
            walk_by_cursor(app, search, status, true, 2, &oldest_first).await;
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
) -> UserId {
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
    let mut tx = app.db().begin().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..10_100u32 {
        let id = UserId::new_random();
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
        ("user 1", UserStatus::Unconfirmed),
        ("bulk", UserStatus::Admins),
        ("bu", UserStatus::Banned),
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
        // Keyset pages: the third page after the second's last user, and back.
        let mut q = query(Some(search), status, 2, 50);
        let second = admin_users::list_users(&app.state, &q).await.unwrap().users;
        if let Some(last) = second.last() {
            q.from = Some(Cursor::After(ListPosition::of(last)));
            q.page = 3;
            let third = admin_users::list_users(&app.state, &q).await.unwrap();
            let got: Vec<String> = third.users.iter().map(|u| u.email.clone()).collect();
            let want: Vec<String> = expected.iter().skip(100).take(50).cloned().collect();
            assert_eq!(got, want, "{search} {status:?} after page 2");
            assert_eq!(third.more, expected.len() > 150);
            if let Some(first) = third.users.first() {
                q.from = Some(Cursor::Before(ListPosition::of(first)));
                let back = admin_users::list_users(&app.state, &q).await.unwrap().users;
                assert_eq!(
                    back.iter().map(|u| u.email.clone()).collect::<Vec<_>>(),
                    second.iter().map(|u| u.email.clone()).collect::<Vec<_>>(),
                    "{search} {status:?} before page 3"
                );
            }
        }
    }
    login_admin(&app).await;
    let (_, html) = get_page(&app, "/users?q=bulk").await;
    assert!(html.contains("more than 10000 users matching"), "{html}");
    assert!(html.contains("Page 1<") && html.contains(r#"rel="next""#));
    let (_, html) = get_page(&app, "/users?q=bulk&status=banned").await;
    assert!(html.contains("202 users matching"), "{html}");

    // The console's next and previous links carry the cursor of the last and first user shown
    // and list the same users as page numbers do.
    let bulk: Vec<String> = users
        .iter()
        .filter(|u| rule_matches(u, Some("bulk"), UserStatus::All, &app))
        .map(|u| u.email.clone())
        .collect();
    let (_, page1) = get_page(&app, "/users?q=bulk").await;
    assert_eq!(listed_emails(&page1), bulk[..50]);
    let next = link_of(&page1, "next").unwrap();
    assert!(next.contains("page=2&after="), "{next}");
    let (_, page2) = get_page(&app, next.trim_start_matches("/console")).await;
    assert_eq!(listed_emails(&page2), bulk[50..100]);
    assert_eq!(
        link_of(&page2, "prev").unwrap(),
        "/console/users?q=bulk&status=all&page=1"
    );
    let next = link_of(&page2, "next").unwrap();
    let (_, page3) = get_page(&app, next.trim_start_matches("/console")).await;
    assert_eq!(listed_emails(&page3), bulk[100..150]);
    assert!(page3.contains("Page 3<"), "{page3}");
    let prev = link_of(&page3, "prev").unwrap();
    assert!(prev.contains("page=2&before="), "{prev}");
    let (_, back) = get_page(&app, prev.trim_start_matches("/console")).await;
    assert_eq!(listed_emails(&back), bulk[50..100]);
    // A cursor that is not one, or both directions at once: a 400 page, never a 500.
    for bad in [
        "/users?after=nonsense",
        "/users?after=12.not-a-uuid",
        "/users?before=99999999999999999999.00000000-0000-0000-0000-000000000000",
        "/users?after=1.00000000-0000-0000-0000-000000000000&before=1.00000000-0000-0000-0000-000000000000",
    ] {
        let (status, _) = get_page(&app, bad).await;
        assert_eq!(status, 400, "{bad}");
    }
}

/// The emails of a console users page, in the order shown.
fn listed_emails(html: &str) -> Vec<String> {
    html.split(r#"<td><a href="/console/users/"#)
        .skip(1)
        .filter_map(|part| part.split_once("\">")?.1.split_once("</a>"))
        .map(|(email, _)| email.to_owned())
        .collect()
}

/// The `href` of the page's `rel` link (`next` or `prev`), unescaped.
fn link_of(html: &str, rel: &str) -> Option<String> {
    let marker = format!(r#"" rel="{rel}""#);
    let (before, _) = html.split_once(&marker)?;
    let (_, href) = before.rsplit_once(r#"<a href=""#)?;
    Some(href.replace("&#38;", "&").replace("&amp;", "&"))
}
