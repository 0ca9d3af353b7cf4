//! One typed message per mail: a plain data struct plus a text and an HTML askama view.
//!
//! Every field holds an already-formatted, display-ready string; the templates only print them.
//! `.html` views are escaped by askama, `.txt` views are not (which is right for a text mail), so
//! no template may mark user data `|safe`.

use askama::Template;

/// What [`super::Mailer::send`] needs from a mail.
pub trait EmailMessage {
    /// The `Subject` header.
    fn subject(&self) -> String;
    /// The `text/plain` alternative.
    fn text(&self) -> Result<String, askama::Error>;
    /// The `text/html` alternative.
    fn html(&self) -> Result<String, askama::Error>;
    /// A short, recipient-free name of the mail for logs, e.g. `"confirmation"`.
    fn kind(&self) -> &'static str;
    /// The link the mail asks the recipient to follow.
    fn action_url(&self) -> &str;
}

/// Declares a mail: its data struct, its two views and its [`EmailMessage`] impl.
///
/// askama binds exactly one template to a struct, so each mail gets two small view structs that
/// borrow it (`mail`), one per template file; the templates read `mail.<field>`.
macro_rules! email_message {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$field_meta:meta])* pub $field:ident: String,)*
        }
        kind = $kind:literal,
        subject = $subject:literal,
        views = ($text_view:ident = $text_path:tt, $html_view:ident = $html_path:tt) $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: String,)*
        }

        #[derive(Template)]
        #[template(path = $text_path)]
        struct $text_view<'a> {
            mail: &'a $name,
        }

        #[derive(Template)]
        #[template(path = $html_path)]
        struct $html_view<'a> {
            mail: &'a $name,
        }

        impl EmailMessage for $name {
            fn subject(&self) -> String {
                $subject.to_owned()
            }

            fn text(&self) -> Result<String, askama::Error> {
                $text_view { mail: self }.render()
            }

            fn html(&self) -> Result<String, askama::Error> {
                $html_view { mail: self }.render()
            }

            fn kind(&self) -> &'static str {
                $kind
            }

            fn action_url(&self) -> &str {
                &self.action_url
            }
        }
    };
}

email_message! {
    /// Sent after signup (and on `/resend`-style re-sends) to confirm the address.
    pub struct ConfirmationEmail {
        /// `SITE_URL`, for the wording.
        pub site_url: String,
        /// The full link, e.g. `https://example.com/#confirmation_token=…`.
        pub action_url: String,
        /// The address being confirmed.
        pub email: String,
        /// How long the link works, e.g. `"24 hours"`.
        pub valid_for: String,
    }
    kind = "confirmation",
    subject = "Confirm Your Signup",
    views = (ConfirmationText = "email/confirmation.txt", ConfirmationHtml = "email/confirmation.html"),
}

email_message! {
    /// Sent by `/recover` (and admin-triggered recovery).
    pub struct RecoveryEmail {
        /// `SITE_URL`, for the wording.
        pub site_url: String,
        /// The full link, e.g. `https://example.com/#recovery_token=…`.
        pub action_url: String,
        /// The account's address.
        pub email: String,
        /// How long the link works, e.g. `"1 hour"`.
        pub valid_for: String,
    }
    kind = "recovery",
    subject = "Reset Your Password",
    views = (RecoveryText = "email/recovery.txt", RecoveryHtml = "email/recovery.html"),
}

email_message! {
    /// Sent by `/invite`.
    pub struct InviteEmail {
        /// `SITE_URL`, named in the body.
        pub site_url: String,
        /// The full link, e.g. `https://example.com/#invite_token=…`.
        pub action_url: String,
        /// The invited address.
        pub email: String,
        /// How long the link works, e.g. `"7 days"`.
        pub valid_for: String,
    }
    kind = "invite",
    subject = "You have been invited",
    views = (InviteText = "email/invite.txt", InviteHtml = "email/invite.html"),
}

email_message! {
    /// Sent to the **new** address when a user asks to change their email.
    pub struct EmailChangeEmail {
        /// `SITE_URL`, for the wording.
        pub site_url: String,
        /// The full link, e.g. `https://example.com/#email_change_token=…`.
        pub action_url: String,
        /// The current address.
        pub email: String,
        /// The address being changed to (the recipient).
        pub new_email: String,
        /// How long the link works, e.g. `"24 hours"`.
        pub valid_for: String,
    }
    kind = "email_change",
    subject = "Confirm Email Change",
    views = (EmailChangeText = "email/email_change.txt", EmailChangeHtml = "email/email_change.html"),
}

email_message! {
    /// Sent to the owner when someone signs up with an address that already has an account.
    ///
    /// The signup itself is answered like a fresh one, so the API does not reveal which
    /// addresses have accounts; only the owner of the mailbox learns about it.
    pub struct AccountExistsEmail {
        /// `SITE_URL`, named in the body.
        pub site_url: String,
        /// Where to go from here: the site itself (no token; nothing expires).
        pub action_url: String,
        /// The account's address.
        pub email: String,
    }
    kind = "account_exists",
    subject = "You already have an account",
    views = (AccountExistsText = "email/account_exists.txt", AccountExistsHtml = "email/account_exists.html"),
}

email_message! {
    /// Sent to the owner of an address that another user tried to change their email to.
    ///
    /// `PUT /user` answers that request exactly as for a free address, so it does not reveal
    /// which addresses have accounts; only the owner of the mailbox learns about it.
    pub struct AddressInUseEmail {
        /// `SITE_URL`, named in the body.
        pub site_url: String,
        /// Where to go from here: the site itself (no token; nothing expires).
        pub action_url: String,
        /// The owner's address (the recipient).
        pub email: String,
    }
    kind = "address_in_use",
    subject = "Someone tried to use your email address",
    views = (AddressInUseText = "email/address_in_use.txt", AddressInUseHtml = "email/address_in_use.html"),
}

email_message! {
    /// Sent to the account's address after its password changed (supabase/auth's
    /// `password_changed_notification`). It carries no token: nothing in it grants access.
    pub struct PasswordChangedNotificationEmail {
        /// `SITE_URL`, named in the body.
        pub site_url: String,
        /// The site itself (no token).
        pub action_url: String,
        /// The account's address (the recipient).
        pub email: String,
        /// Who changed it, e.g. `"you (or someone signed in as you)"` or `"an administrator"`.
        pub changed_by: String,
    }
    kind = "password_changed_notification",
    subject = "Your password has been changed",
    views = (PasswordChangedText = "email/password_changed_notification.txt", PasswordChangedHtml = "email/password_changed_notification.html"),
}

email_message! {
    /// Sent to the account's current address when a change of it to `new_email` is requested
    /// (the link itself goes to the new address only). No token.
    pub struct EmailChangeRequestedNotificationEmail {
        /// `SITE_URL`, named in the body.
        pub site_url: String,
        /// The site itself (no token).
        pub action_url: String,
        /// The account's current address (the recipient).
        pub email: String,
        /// The address asked for.
        pub new_email: String,
    }
    kind = "email_change_requested_notification",
    subject = "An email address change was requested",
    views = (EmailChangeRequestedText = "email/email_change_requested_notification.txt", EmailChangeRequestedHtml = "email/email_change_requested_notification.html"),
}

email_message! {
    /// Sent to the old address once the account's email changed (supabase/auth's
    /// `email_changed_notification`). No token.
    pub struct EmailChangedNotificationEmail {
        /// `SITE_URL`, named in the body.
        pub site_url: String,
        /// The site itself (no token).
        pub action_url: String,
        /// The old address (the recipient).
        pub email: String,
        /// The account's address from now on.
        pub new_email: String,
        /// Who changed it, as in [`PasswordChangedNotificationEmail`].
        pub changed_by: String,
    }
    kind = "email_changed_notification",
    subject = "Your email address has been changed",
    views = (EmailChangedText = "email/email_changed_notification.txt", EmailChangedHtml = "email/email_changed_notification.html"),
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {

    #[test]
    fn notifications_render_escaped_without_markup_in_text() {
        let evil = r#"<script>x</script>@example.com"#;
        let notices: Vec<Box<dyn EmailMessage>> = vec![
            Box::new(PasswordChangedNotificationEmail {
                site_url: SITE.to_owned(),
                action_url: SITE.to_owned(),
                email: evil.to_owned(),
                changed_by: "an administrator".to_owned(),
            }),
            Box::new(EmailChangeRequestedNotificationEmail {
                site_url: SITE.to_owned(),
                action_url: SITE.to_owned(),
                email: "old@x.io".to_owned(),
                new_email: evil.to_owned(),
            }),
            Box::new(EmailChangedNotificationEmail {
                site_url: SITE.to_owned(),
                action_url: SITE.to_owned(),
                email: "old@x.io".to_owned(),
                new_email: evil.to_owned(),
                changed_by: "an administrator".to_owned(),
            }),
        ];
        for notice in notices {
            let (text, html) = (notice.text().unwrap(), notice.html().unwrap());
            assert!(
                text.contains(evil) && !html.contains("<script>"),
                "{}",
                notice.kind()
            );
            assert!(html.contains("<html") && html.contains(SITE));
            assert!(text.contains(SITE) && !notice.subject().is_empty());
        }
    }
    use super::*;
    use pretty_assertions::assert_eq;

    const SITE: &str = "https://example.com";
    // Tokens are base64url; `_`, `-` and the `#…=` fragment must survive both views verbatim.
    const LINK: &str = "https://example.com/#confirmation_token=Ab9_-xYz_-012";

    fn all_messages(email: &str, new_email: &str) -> Vec<Box<dyn EmailMessage>> {
        vec![
            Box::new(ConfirmationEmail {
                site_url: SITE.to_owned(),
                action_url: LINK.to_owned(),
                email: email.to_owned(),
                valid_for: "24 hours".to_owned(),
            }),
            Box::new(RecoveryEmail {
                site_url: SITE.to_owned(),
                action_url: LINK.to_owned(),
                email: email.to_owned(),
                valid_for: "1 hour".to_owned(),
            }),
            Box::new(InviteEmail {
                site_url: SITE.to_owned(),
                action_url: LINK.to_owned(),
                email: email.to_owned(),
                valid_for: "7 days".to_owned(),
            }),
            Box::new(EmailChangeEmail {
                site_url: SITE.to_owned(),
                action_url: LINK.to_owned(),
                email: email.to_owned(),
                new_email: new_email.to_owned(),
                valid_for: "24 hours".to_owned(),
            }),
            Box::new(AccountExistsEmail {
                site_url: SITE.to_owned(),
                action_url: LINK.to_owned(),
                email: email.to_owned(),
            }),
            Box::new(AddressInUseEmail {
                site_url: SITE.to_owned(),
                action_url: LINK.to_owned(),
                email: email.to_owned(),
            }),
        ]
    }

    #[test]
    fn every_message_renders_with_the_link_verbatim_in_both_views() {
        for message in all_messages("jane@example.com", "new@example.com") {
            let kind = message.kind();
            let text = message.text().unwrap();
            let html = message.html().unwrap();
            assert!(text.contains(LINK), "{kind} text lacks the link:\n{text}");
            assert!(
                html.contains(&format!(r#"href="{LINK}""#)),
                "{kind} html lacks the href:\n{html}"
            );
            assert!(!message.subject().is_empty());
            assert!(html.contains("<html"), "{kind} does not extend the layout");
            assert!(!text.contains('<'), "{kind} text contains markup:\n{text}");
            assert_eq!(message.action_url(), LINK);
        }
    }

    #[test]
    fn token_mails_state_how_long_the_link_is_valid() {
        for message in all_messages("jane@example.com", "new@example.com") {
            if matches!(message.kind(), "account_exists" | "address_in_use") {
                continue;
            }
            let text = message.text().unwrap();
            let html = message.html().unwrap();
            for body in [&text, &html] {
                assert!(
                    ["24 hours", "1 hour", "7 days"]
                        .iter()
                        .any(|v| body.contains(&format!("valid for {v}"))),
                    "{} lacks a validity line:\n{body}",
                    message.kind()
                );
            }
        }
    }

    #[test]
    fn subjects_match_gotrue_defaults() {
        let subjects: Vec<_> = all_messages("a@b.c", "d@e.f")
            .iter()
            .map(|m| (m.kind(), m.subject()))
            .collect();
        assert_eq!(
            subjects,
            vec![
                ("confirmation", "Confirm Your Signup".to_owned()),
                ("recovery", "Reset Your Password".to_owned()),
                ("invite", "You have been invited".to_owned()),
                ("email_change", "Confirm Email Change".to_owned()),
                ("account_exists", "You already have an account".to_owned()),
                (
                    "address_in_use",
                    "Someone tried to use your email address".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn html_views_escape_user_data_and_text_views_keep_it() {
        let evil = r#"<script>alert("x")</script>&'@example.com"#;
        for message in all_messages(evil, evil) {
            let html = message.html().unwrap();
            assert!(
                !html.contains("<script>"),
                "{} html is not escaped:\n{html}",
                message.kind()
            );
            let text = message.text().unwrap();
            if text.contains("alert") {
                assert!(text.contains(evil), "text view must not be escaped");
                assert!(html.contains("&#60;script&#62;alert(&#34;x&#34;)"));
            }
        }
    }

    #[test]
    fn link_labels_and_wording_follow_gotrue() {
        let html = |m: &dyn EmailMessage| m.html().unwrap();
        let [confirm, recover, invite, change, exists, in_use] =
            <[Box<dyn EmailMessage>; 6]>::try_from(all_messages("old@x.io", "new@x.io"))
                .ok()
                .unwrap();
        assert!(html(&*confirm).contains("Confirm your email address"));
        assert!(html(&*recover).contains("Reset password"));
        assert!(html(&*invite).contains("Accept the invite"));
        assert!(
            invite
                .text()
                .unwrap()
                .contains("You have been invited to create a user on https://example.com.")
        );
        let change_text = change.text().unwrap();
        assert!(
            change_text.contains("from old@x.io to new@x.io"),
            "{change_text}"
        );
        let exists_text = exists.text().unwrap();
        assert!(
            exists_text.contains("already have an account"),
            "{exists_text}"
        );
        assert!(exists_text.contains("https://example.com"));
        assert!(exists_text.to_lowercase().contains("password recovery"));
        let in_use_text = in_use.text().unwrap();
        assert!(
            in_use_text.contains("change their email address to old@x.io"),
            "{in_use_text}"
        );
        assert!(in_use_text.contains("nothing was changed"));
    }

    #[test]
    fn ampersands_in_links_become_entities_only_in_html() {
        let message = ConfirmationEmail {
            site_url: SITE.to_owned(),
            action_url: "https://example.com/?a=1&b=2#confirmation_token=x".to_owned(),
            email: "jane@example.com".to_owned(),
            valid_for: "24 hours".to_owned(),
        };
        // `&#38;` inside an attribute is decoded back to `&` by every HTML parser.
        assert!(
            message
                .html()
                .unwrap()
                .contains(r#"href="https://example.com/?a=1&#38;b=2#confirmation_token=x""#)
        );
        assert!(
            message
                .text()
                .unwrap()
                .contains("https://example.com/?a=1&b=2#confirmation_token=x")
        );
    }
}
