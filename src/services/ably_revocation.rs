//! Revokes the live Ably tokens of a user who was banned or deleted (DESIGN §5, spec/ably.md
//! §5), after the change is committed and off the request path. A failure is logged and
//! audited; the ban stands.

use anyhow::Context;
use serde::Deserialize;
use serde_json::json;

use super::Actor;
use super::audit::{self, Action};
use crate::domain::user::User;
use crate::state::AppState;

/// Starts the revocation in the background when a key is set and revocation is on.
pub fn revoke_in_background(state: &AppState, actor: &Actor, user: &User) {
    let settings = &state.settings.ably;
    if settings.key.is_none() || !settings.revoke_on_ban {
        return;
    }
    let state_for_task = state.clone();
    let actor = actor.clone();
    let user_id = user.id.to_string();
    let email = user.email.clone();
    state.background.spawn(async move {
        let state = state_for_task;
        let outcome = revoke_client_id(&state, &user_id).await;
        let now = state.clock.now();
        let mut traits = json!({"user_id": user_id, "user_email": email});
        let action = match &outcome {
            Ok(()) => Action::AblyTokensRevoked,
            Err(e) => {
                tracing::error!(%user_id, error = ?e, "Ably token revocation failed; the ban stands");
                traits["error"] = json!(format!("{e:#}"));
                Action::AblyRevocationFailed
            }
        };
        let recorded = match state.writer().await {
            Ok(mut conn) => audit::record(&mut conn.conn(), &actor, action, traits, now).await,
            Err(e) => Err(e),
        };
        if let Err(e) = recorded {
            tracing::error!(%user_id, error = ?e, "could not audit the Ably revocation");
        }
    });
}

/// `POST {rest}/keys/{keyName}/revokeTokens {"targets":["clientId:<id>"]}` with Basic auth.
async fn revoke_client_id(state: &AppState, client_id: &str) -> anyhow::Result<()> {
    let settings = &state.settings.ably;
    let key = settings.key.as_ref().context("no Ably key")?;
    let mut url = settings.rest_url.clone();
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("CHIPFLAP_ABLY_REST_URL cannot be a base"))?
        .pop_if_empty()
        .extend(["keys", key.name.as_str(), "revokeTokens"]);
    let target = format!("clientId:{client_id}");
    let response = state
        .http
        .post(url)
        .header("authorization", key.basic_auth())
        .header("accept", "application/json")
        .json(&json!({"targets": [target]}))
        .send()
        .await
        .context("sending the revocation to Ably")?;
    let status = response.status();
    let body = response.text().await.context("reading Ably's answer")?;
    if !status.is_success() {
        anyhow::bail!("Ably answered {status}: {}", truncate(&body));
    }
    check_results(&body)
}

/// Ably answers either 201 `[{target, issuedBefore, appliesAt} | {target, error}]` or, with
/// newer protocol versions, 200 `{successCount, failureCount, results: [...]}`.
fn check_results(body: &str) -> anyhow::Result<()> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Answer {
        Batch { results: Vec<TargetResult> },
        List(Vec<TargetResult>),
    }
    #[derive(Deserialize)]
    struct TargetResult {
        #[serde(default)]
        target: Option<String>,
        #[serde(default)]
        error: Option<serde_json::Value>,
    }
    let answer: Answer = serde_json::from_str(body)
        .with_context(|| format!("unexpected answer from Ably: {}", truncate(body)))?;
    let results = match answer {
        Answer::Batch { results } | Answer::List(results) => results,
    };
    if results.is_empty() {
        anyhow::bail!("Ably answered no result for the target");
    }
    for result in results {
        if let Some(error) = result.error {
            anyhow::bail!(
                "Ably refused {}: {}",
                result.target.unwrap_or_default(),
                error
                    .get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or("unknown error")
            );
        }
    }
    Ok(())
}

fn truncate(s: &str) -> &str {
    let end = s.char_indices().nth(300).map_or(s.len(), |(i, _)| i);
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_answer_shapes_are_understood() {
        assert!(
            check_results(r#"[{"target":"clientId:u","issuedBefore":1,"appliesAt":2}]"#).is_ok()
        );
        assert!(
            check_results(r#"{"successCount":1,"failureCount":0,"results":[{"target":"clientId:u","issuedBefore":1,"appliesAt":2}]}"#)
                .is_ok()
        );
        let err = check_results(
            r#"{"successCount":0,"failureCount":1,"results":[{"target":"clientId:u","error":{"code":40163,"statusCode":400,"message":"revocation not enabled"}}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("revocation not enabled"));
        assert!(check_results(r#"[{"target":"clientId:u","error":{"message":"no"}}]"#).is_err());
        assert!(check_results("[]").is_err());
        assert!(check_results("<html>").is_err());
    }
}
