//! Rule (ASVS 5.0 V6.2.5, V6.2.8, V6.2.9): a password is checked exactly as the user typed it:
//! no trimming, no case change, no truncation; any characters, and long passphrases, are fine.

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_password_is_checked_exactly_as_typed() {
    let app = spawn_app().await;
    let typed = "  Tür zu, Ünïcödé & spaces  ";
    let token = app.post_signup("kim@example.org", typed).await;
    assert_eq!(token.status(), 200);
    let confirmation = app
        .token_in_last_email("kim@example.org", "confirmation")
        .await;
    assert_eq!(
        app.post_verify("signup", &confirmation, None)
            .await
            .status(),
        200
    );

    assert_eq!(
        app.post_token_password("kim@example.org", typed)
            .await
            .status(),
        200
    );
    for near in [
        typed.trim(),
        &typed.to_lowercase(),
        &typed.to_uppercase(),
        &typed[..typed.len() - 1],
    ] {
        let r = app.post_token_password("kim@example.org", near).await;
        assert_eq!(r.status(), 400, "{near:?} must not log in");
    }
}

#[tokio::test]
async fn long_passphrases_of_any_characters_are_accepted_whole() {
    let app = spawn_app().await;
    // 200 characters, beyond any 64- or 72-byte cut-off a weaker hash would make.
    let long: String = "correct horse battery staple 🐴 "
        .repeat(7)
        .chars()
        .take(200)
        .collect();
    assert_eq!(
        app.post_signup("lee@example.org", &long).await.status(),
        200
    );
    let confirmation = app
        .token_in_last_email("lee@example.org", "confirmation")
        .await;
    assert_eq!(
        app.post_verify("signup", &confirmation, None)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post_token_password("lee@example.org", &long)
            .await
            .status(),
        200
    );
    let mut changed_at_the_end = long.clone();
    changed_at_the_end.pop();
    changed_at_the_end.push('!');
    let r = app
        .post_token_password("lee@example.org", &changed_at_the_end)
        .await;
    assert_eq!(r.status(), 400, "the last character counts");
}
