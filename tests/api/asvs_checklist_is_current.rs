//! Rule: `docs/security/asvs.md` stays current. Every level 1 and 2 requirement of OWASP ASVS
//! 5.0 V6 (Authentication) and V7 (Session Management) has a row with a verdict that is not
//! FAIL, and every test, file or Node test title that a row names as evidence exists.

use std::path::Path;

/// The ASVS 5.0.0 requirement ids at levels 1 and 2 of V6 and V7 (from OWASP's CSV).
const V6_V7_L1_L2: &[&str] = &[
    "V6.1.1", "V6.1.2", "V6.1.3", "V6.2.1", "V6.2.2", "V6.2.3", "V6.2.4", "V6.2.5", "V6.2.6",
    "V6.2.7", "V6.2.8", "V6.2.9", "V6.2.10", "V6.2.11", "V6.2.12", "V6.3.1", "V6.3.2", "V6.3.3",
    "V6.3.4", "V6.4.1", "V6.4.2", "V6.4.3", "V6.4.4", "V6.5.1", "V6.5.2", "V6.5.3", "V6.5.4",
    "V6.5.5", "V6.6.1", "V6.6.2", "V6.6.3", "V6.8.1", "V6.8.2", "V6.8.3", "V6.8.4", "V7.1.1",
    "V7.1.2", "V7.1.3", "V7.2.1", "V7.2.2", "V7.2.3", "V7.2.4", "V7.3.1", "V7.3.2", "V7.4.1",
    "V7.4.2", "V7.4.3", "V7.4.4", "V7.4.5", "V7.5.1", "V7.5.2", "V7.6.1", "V7.6.2",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn checklist() -> String {
    std::fs::read_to_string(root().join("docs/security/asvs.md")).unwrap()
}

/// The table rows: `| id | level | requirement | verdict | evidence |`.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| l.starts_with("| V"))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn every_v6_and_v7_level_1_and_2_item_has_a_verdict_and_none_fails() {
    let text = checklist();
    let rows = rows(&text);
    for id in V6_V7_L1_L2 {
        let row = rows
            .iter()
            .find(|r| r[0] == *id)
            .unwrap_or_else(|| panic!("{id} has no row in docs/security/asvs.md"));
        assert_eq!(row.len(), 5, "{id}: a row has five cells: {row:?}");
        let verdict = row[3].as_str();
        assert!(
            verdict == "PASS" || verdict.starts_with("N/A"),
            "{id}: verdict {verdict:?} (PASS, or N/A with the reason)"
        );
        assert!(!row[4].is_empty(), "{id}: no evidence");
    }
    for row in rows
        .iter()
        .filter(|r| r[0].starts_with("V6.") || r[0].starts_with("V7."))
    {
        assert_ne!(row.get(3).map(String::as_str), Some("FAIL"), "{row:?}");
    }
}

/// Evidence is written as `` `tests/…rs::function` ``, `` `tests/…mjs: "title"` `` or a path in
/// backticks (`src/…`, `crates/…`, `docs/…`, `migrations/…`).
#[test]
fn every_test_and_file_the_checklist_names_exists() {
    let text = checklist();
    let mut checked = 0;
    for cell in text.split('`').skip(1).step_by(2) {
        if let Some((file, function)) = cell.split_once(".rs::") {
            let source = std::fs::read_to_string(root().join(format!("{file}.rs")))
                .unwrap_or_else(|_| panic!("{cell}: no file {file}.rs"));
            assert!(
                source.contains(&format!("fn {function}(")),
                "{cell}: {file}.rs has no fn {function}"
            );
            checked += 1;
        } else if let Some((file, title)) = cell.split_once(".mjs: ") {
            let source = std::fs::read_to_string(root().join(format!("{file}.mjs")))
                .unwrap_or_else(|_| panic!("{cell}: no file {file}.mjs"));
            let title = title.trim_matches('"');
            assert!(source.contains(title), "{cell}: no test titled {title:?}");
            checked += 1;
        } else if [
            "src/",
            "docs/",
            "migrations/",
            "crates/",
            "templates/",
            "tests/",
        ]
        .iter()
        .any(|p| cell.starts_with(p))
        {
            let path = cell.split([' ', '#']).next().unwrap();
            assert!(root().join(path).exists(), "{cell}: no such path");
            checked += 1;
        }
    }
    assert!(
        checked >= 60,
        "only {checked} references checked: is the checklist written?"
    );
}
