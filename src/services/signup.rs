//! `POST /signup`: new accounts, without revealing which addresses already have one (DESIGN §4.4).

use anyhow::Context;
use serde_json::json;

use super::Actor;
use super::audit::{self, Action};
use super::mail_links::{
    self, SentStamp, forget_unsent_mail, human_duration, store_link_token, throttled,
};
use crate::domain::ValidationError;
use crate::domain::email_address::EmailAddress;
use crate::domain::metadata::{self, Metadata};
use crate::domain::one_time_token::{SecretToken, TokenDigest, TokenPurpose};
use crate::domain::password::Password;
use crate::domain::timestamp::Timestamp;
use crate::domain::user::{User, UserId};
use crate::mail::{AccountExistsEmail, ConfirmationEmail, EmailMessage, InviteEmail};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    #[error("signups are disabled")]
    Disabled,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The confirmation mail could not be sent; the signup was undone.
    #[error("the confirmation mail could not be sent")]
    Mail(#[source] crate::mail::MailError),
    /// Every password-hashing thread is busy and `CHIPFLAP_HASH_QUEUE` jobs wait: nothing was
    /// checked or hashed; the client may retry in a second (503).
    #[error("{}", crate::auth::password_hasher::BUSY)]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<crate::auth::password_hasher::HashError> for SignupError {
    fn from(e: crate::auth::password_hasher::HashError) -> Self {
        match e {
            crate::auth::password_hasher::HashError::Busy => SignupError::Busy,
            e => SignupError::Unexpected(anyhow::Error::new(e).context("hashing a password")),
        }
    }
}

pub struct SignupRequest<'a> {
    pub aud: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    pub data: Option<Metadata>,
}

/// Answers the user object of the new account. For an address that already has an account the
/// answer looks the same (a made-up unsaved user) and the owner gets a mail instead: the account
/// itself is not changed (DESIGN §4.4, §4.5). While it is unconfirmed, that mail carries a new
/// confirmation link bound to this signup's password (README "The mailbox owner decides the
/// password").
#[tracing::instrument(skip_all)]
pub async fn signup(state: &AppState, request: SignupRequest<'_>) -> Result<User, SignupError> {
    let settings = &state.settings;
    if settings.signup.disabled {
        return Err(SignupError::Disabled);
    }
    let email = EmailAddress::parse(request.email)?;
    let password = Password::parse(
        request.password,
        &settings.signup.password_policy,
        email.as_str(),
    )?;
    let data = request.data.unwrap_or_default();
    metadata::check_size("data", &data)?;
    // Hash before looking up, so both outcomes do the same argon2 work.
    let hash = state.hasher.hash(&password).await?;
    let now = state.clock.now();
    let candidate = User {
        id: UserId::new_random(),
        aud: request.aud.to_owned(),
        role: settings.jwt.default_group.clone(),
        email: email.as_str().to_owned(),
        password_hash: Some(hash),
        confirmed_at: settings.signup.autoconfirm.then_some(now),
        invited_at: None,
        confirmation_sent_at: None,
        recovery_sent_at: None,
        new_email: None,
        email_change_sent_at: None,
        last_sign_in_at: None,
        banned_until: None,
        app_metadata: provider_email(),
        user_metadata: data,
        created_at: now,
        updated_at: now,
    };

    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let inserted = tx
        .insert_user(&candidate)
        .await
        .on_conflict(|| ())
        .context("inserting the user")?;
    if inserted.is_err() {
        tx.rollback().await.context("rolling back")?;
        return existing_account(state, candidate, now).await;
    }
    audit::record(
        &mut tx.conn(),
        &Actor::user(&candidate),
        Action::UserSignedUp,
        json!({"provider": "email"}),
        now,
    )
    .await
    .context("auditing the signup")?;
    if settings.signup.autoconfirm {
        tx.commit().await.context("committing the signup")?;
        return Ok(candidate);
    }
    // The first signup's password is also the account's, so logging in with it before the
    // confirmation says "Email not confirmed" (gotrue-js); confirming replaces it with the
    // password bound to the link that was clicked.
    let mut user = candidate;
    let token = SecretToken::generate();
    tx.add_confirmation_token(
        user.id,
        &token.digest(),
        user.password_hash.as_ref(),
        now,
        now.plus(settings.mailer.confirmation_max_age),
        MAX_CONFIRMATION_LINKS,
    )
    .await
    .context("storing the confirmation token")?;
    user.confirmation_sent_at = Some(now);
    tx.update_user(&user)
        .await
        .context("recording the confirmation mail")?;
    // Counted in the same transaction: over the address's mail limit, nothing is stored and the
    // answer is as usual. (Counted after the commit, a signup over the limit had to undo an
    // account that racing signups of the same address had meanwhile mailed links for.)
    if !super::throttle::mail_allowed_in(&mut tx.conn(), state, &user.email).await? {
        tx.rollback().await.context("rolling back")?;
        return Ok(user);
    }
    tx.commit().await.context("committing the signup")?;

    let mail = ConfirmationEmail {
        site_url: mail_links::site_url(state),
        action_url: mail_links::link(state, "confirmation_token", &token),
        email: user.email.clone(),
        valid_for: human_duration(settings.mailer.confirmation_max_age),
    };
    if let Err(e) = state.mailer.send(&user.email, &mail).await {
        // Undo the whole signup, so retrying it starts afresh with the password typed then.
        undo_signup(state, user.id, &token)
            .await
            .context("undoing a signup whose mail failed")?;
        return Err(SignupError::Mail(e));
    }
    state
        .writer()
        .await
        .context("waiting to write")?
        .mark_token_mailed(&token.digest())
        .await
        .context("recording a sent mail")?;
    Ok(user)
}

/// Undoes a new account whose confirmation mail did not go out: forgets its link, and the
/// account too unless a later signup of the same address (racing this one) has added a link of
/// its own meanwhile; that one's mail stands, so the account must stay for it.
async fn undo_signup(state: &AppState, id: UserId, token: &SecretToken) -> Result<(), StoreError> {
    let mut tx = state.store.begin_write().await?;
    tx.delete_token(&token.digest()).await?;
    if tx.count_user_tokens(id, TokenPurpose::Confirmation).await? == 0 {
        tx.delete_user(id).await?;
    }
    tx.commit().await
}

/// How many confirmation links of one unconfirmed address may be live at once (one per
/// signup); a newer signup drops the oldest. Each is bound to its signup's password.
pub const MAX_CONFIRMATION_LINKS: i64 = 5;

/// A link mailed to an existing account's owner.
enum OwnerLink {
    /// A new confirmation link bound to this signup's password (one of several).
    Confirmation(SecretToken),
    /// The invite, mailed again (replaces the earlier one).
    Invite(SecretToken),
}

/// The address has an account: mail its owner and answer with the unsaved candidate. An
/// unconfirmed account gets a new confirmation link bound to `candidate`'s password, limited
/// only by the per-address mail limit; an invited one its invite again and a confirmed one a
/// "you already have an account" note, both also at most once per `GOTRUE_SMTP_MAX_FREQUENCY`.
/// Nothing else about the account changes (DESIGN §4.5).
async fn existing_account(
    state: &AppState,
    candidate: User,
    now: Timestamp,
) -> Result<User, SignupError> {
    let settings = &state.settings;
    let mut response = candidate;
    let hash = response.password_hash.take();
    if !settings.signup.autoconfirm {
        response.confirmation_sent_at = Some(now);
    }

    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let Some(owner) = tx
        .find_user_by_email(&response.aud, &response.email)
        .await
        .context("loading the existing account")?
    else {
        // The first signup was undone meanwhile (its mail failed or was over the address's
        // limit, which this one would be too): answer as usual, nothing stored.
        tracing::info!("a signup raced an undone signup of the same address");
        return Ok(response);
    };
    let invited = owner.invited_at.is_some() && owner.password_hash.is_none();
    let awaits_confirmation = !owner.is_confirmed() && !invited;
    // An unconfirmed address gets this signup's own link even inside GOTRUE_SMTP_MAX_FREQUENCY
    // (only the per-address mail limit applies): otherwise whoever signed up first would leave
    // the mailbox owner holding only their link, and their password.
    if !awaits_confirmation && throttled(state, owner.confirmation_sent_at, now) {
        return Ok(response);
    }
    let link = if owner.is_confirmed() {
        None
    } else if invited {
        let max_age = settings.mailer.invite_max_age;
        let token = store_link_token(
            &mut tx.conn(),
            owner.id,
            TokenPurpose::Invite,
            None,
            now,
            max_age,
        )
        .await
        .context("storing the invite token")?;
        Some(OwnerLink::Invite(token))
    } else {
        let token = SecretToken::generate();
        tx.add_confirmation_token(
            owner.id,
            &token.digest(),
            hash.as_ref(),
            now,
            now.plus(settings.mailer.confirmation_max_age),
            MAX_CONFIRMATION_LINKS,
        )
        .await
        .context("storing the confirmation token")?;
        Some(OwnerLink::Confirmation(token))
    };
    tx.set_confirmation_sent_at(owner.id, Some(now))
        .await
        .context("recording the mail")?;
    tx.commit().await.context("committing")?;

    let previous_sent_at = owner.confirmation_sent_at;
    let sent_link = match &link {
        Some(OwnerLink::Invite(_)) => Some(SentLink::Purpose(TokenPurpose::Invite)),
        Some(OwnerLink::Confirmation(token)) => Some(SentLink::One(token.digest())),
        None => None,
    };
    let mail: Box<dyn EmailMessage + Send + Sync> = match link {
        Some(OwnerLink::Invite(token)) => Box::new(InviteEmail {
            site_url: mail_links::site_url(state),
            action_url: mail_links::link(state, "invite_token", &token),
            email: owner.email.clone(),
            valid_for: human_duration(settings.mailer.invite_max_age),
        }),
        Some(OwnerLink::Confirmation(token)) => Box::new(ConfirmationEmail {
            site_url: mail_links::site_url(state),
            action_url: mail_links::link(state, "confirmation_token", &token),
            email: owner.email.clone(),
            valid_for: human_duration(settings.mailer.confirmation_max_age),
        }),
        None => Box::new(AccountExistsEmail {
            site_url: mail_links::site_url(state),
            action_url: mail_links::site_url(state),
            email: owner.email.clone(),
        }),
    };
    // A fresh signup under autoconfirm sends nothing, so mailing here must not delay the
    // answer either; otherwise both paths send one mail before answering.
    if settings.signup.autoconfirm {
        let task_state = state.clone();
        state.background.spawn(async move {
            let state = task_state;
            // Over the address's mail limit counts as unsent (mail_allowed logs it).
            let sent = match super::throttle::mail_allowed(&state, &owner.email).await {
                Ok(true) => state
                    .mailer
                    .send(&owner.email, mail.as_ref())
                    .await
                    .map_err(anyhow::Error::new),
                Ok(false) => Err(anyhow::anyhow!("the address is over its mail limit")),
                Err(e) => Err(e),
            };
            if let (Ok(()), Some(link)) = (&sent, &sent_link)
                && let Err(e) = link.record_mailed(&state, owner.id).await
            {
                tracing::error!(user_id = %owner.id, error = ?e, "could not record a sent account mail");
            }
            if let Err(e) = sent {
                tracing::warn!(user_id = %owner.id, error = ?e, "account notice mail not sent");
                let undo = forget_unsent(&state, owner.id, sent_link.as_ref(), previous_sent_at);
                if let Err(e) = undo.await {
                    tracing::error!(user_id = %owner.id, error = ?e, "could not undo an unsent account mail");
                }
            }
        });
        return Ok(response);
    }
    if !super::throttle::mail_allowed(state, &owner.email).await? {
        forget_unsent(state, owner.id, sent_link.as_ref(), previous_sent_at)
            .await
            .context("undoing a mail over the limit")?;
        return Ok(response);
    }
    if let Err(e) = state.mailer.send(&owner.email, mail.as_ref()).await {
        forget_unsent(state, owner.id, sent_link.as_ref(), previous_sent_at)
            .await
            .context("undoing an unsent account mail")?;
        return Err(SignupError::Mail(e));
    }
    if let Some(link) = &sent_link {
        link.record_mailed(state, owner.id).await?;
    }
    Ok(response)
}

/// Which stored link a mail to an existing account carried.
enum SentLink {
    /// The only link of this purpose (invites).
    Purpose(TokenPurpose),
    /// This one confirmation link among several.
    One(TokenDigest),
}

impl SentLink {
    async fn record_mailed(&self, state: &AppState, user_id: UserId) -> anyhow::Result<()> {
        match self {
            SentLink::Purpose(purpose) => mail_links::record_mailed(state, user_id, *purpose).await,
            SentLink::One(digest) => state
                .writer()
                .await
                .context("waiting to write")?
                .mark_token_mailed(digest)
                .await
                .context("recording a sent mail"),
        }
    }
}

/// After a mail to an existing account could not be sent: forget its link (only that one, so
/// the other signups' links stay) and restore the throttle stamp.
async fn forget_unsent(
    state: &AppState,
    user_id: UserId,
    link: Option<&SentLink>,
    previous_sent_at: Option<Timestamp>,
) -> Result<(), StoreError> {
    match link {
        Some(SentLink::One(digest)) => {
            state.writer().await?.delete_token(digest).await?;
            forget_unsent_mail(
                state,
                user_id,
                None,
                SentStamp::Confirmation,
                previous_sent_at,
            )
            .await
        }
        Some(SentLink::Purpose(purpose)) => {
            let purpose = Some(*purpose);
            forget_unsent_mail(
                state,
                user_id,
                purpose,
                SentStamp::Confirmation,
                previous_sent_at,
            )
            .await
        }
        None => {
            forget_unsent_mail(
                state,
                user_id,
                None,
                SentStamp::Confirmation,
                previous_sent_at,
            )
            .await
        }
    }
}

pub fn provider_email() -> Metadata {
    let mut m = Metadata::new();
    m.insert("provider".into(), json!("email"));
    m
}
