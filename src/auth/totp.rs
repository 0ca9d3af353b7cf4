//! RFC 6238 TOTP codes (totp-rs: SHA-1, 6 digits, 30 s steps, one step of skew either way),
//! checked at the app's Clock, never the wall clock, and the enrollment QR code (qrcode, SVG).

use qrcode::QrCode;
use qrcode::render::svg;
use rand::RngCore;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

/// Digits per code.
pub const DIGITS: usize = 6;
/// Seconds per time step.
pub const STEP_SECONDS: u64 = 30;
/// Steps accepted either side of now (clock drift between phone and server).
pub const SKEW_STEPS: i64 = 1;
/// Key length: 160 bits, RFC 4226's recommendation for HMAC-SHA-1.
pub const KEY_BYTES: usize = 20;

/// A factor's shared key. Never `Debug`-printed.
#[derive(Clone)]
pub struct TotpKey(Vec<u8>);

impl std::fmt::Debug for TotpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpKey(***)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the TOTP parameters were refused: {0}")]
pub struct TotpError(String);

impl TotpKey {
    /// A new random key.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; KEY_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        TotpKey(bytes)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        TotpKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `issuer` and `account` label the entry in the authenticator app; `:` is not allowed in
    /// either (Key URI format), so it is replaced.
    fn totp(&self, issuer: &str, account: &str) -> Result<TOTP, TotpError> {
        TOTP::new(
            Algorithm::SHA1,
            DIGITS,
            1,
            STEP_SECONDS,
            self.0.clone(),
            Some(issuer.replace(':', "-")),
            account.replace(':', "-"),
        )
        .map_err(|e| TotpError(e.to_string()))
    }

    /// The key in base32, as authenticator apps take it when typed in.
    pub fn base32(&self) -> Result<String, TotpError> {
        Ok(self.totp("chipflap", "user")?.get_secret_base32())
    }

    /// The `otpauth://totp/...` URI (Google Authenticator's Key URI format).
    pub fn uri(&self, issuer: &str, account: &str) -> Result<String, TotpError> {
        Ok(self.totp(issuer, account)?.get_url())
    }

    /// The code for the step containing `unix_seconds`.
    pub fn code_at(&self, unix_seconds: i64) -> Result<String, TotpError> {
        let at = u64::try_from(unix_seconds).map_err(|_| TotpError("time before 1970".into()))?;
        Ok(self.totp("chipflap", "user")?.generate(at))
    }

    /// The time step (`unix_seconds / 30`) whose code `code` is, within one step of now;
    /// `None` for any other code. Compared in constant time; every candidate is computed.
    pub fn matching_step(&self, code: &str, unix_seconds: i64) -> Result<Option<i64>, TotpError> {
        let totp = self.totp("chipflap", "user")?;
        let code = code.trim();
        let now_step = unix_seconds.div_euclid(STEP_SECONDS as i64);
        let mut found = None;
        for step in (now_step - SKEW_STEPS)..=(now_step + SKEW_STEPS) {
            let Ok(at) = u64::try_from(step * STEP_SECONDS as i64) else {
                continue;
            };
            let expected = totp.generate(at);
            if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
                found = Some(step);
            }
        }
        Ok(found)
    }
}

/// The URI as a QR code, an SVG `data:` URI (what supabase/auth's `qr_code` holds).
pub fn qr_code_svg(uri: &str) -> Option<String> {
    let code = QrCode::new(uri.as_bytes()).ok()?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Some(format!(
        "data:image/svg+xml;utf-8,{}",
        percent_encoding::utf8_percent_encode(&image, percent_encoding::NON_ALPHANUMERIC)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vectors_truncated_to_six_digits() {
        // RFC 6238 appendix B, SHA-1 key "12345678901234567890": 94287082 at 59 s.
        let key = TotpKey::from_bytes(b"12345678901234567890".to_vec());
        assert_eq!(key.code_at(59).unwrap(), "287082");
        assert_eq!(key.code_at(1_111_111_109).unwrap(), "081804");
        assert_eq!(key.code_at(2_000_000_000).unwrap(), "279037");
    }

    #[test]
    fn codes_match_within_one_step_only() {
        let key = TotpKey::generate();
        let now = 1_800_000_015;
        let code = key.code_at(now).unwrap();
        let step = now / 30;
        assert_eq!(key.matching_step(&code, now).unwrap(), Some(step));
        assert_eq!(key.matching_step(&code, now + 30).unwrap(), Some(step));
        assert_eq!(key.matching_step(&code, now - 30).unwrap(), Some(step));
        assert_eq!(key.matching_step(&code, now + 60).unwrap(), None);
        assert_eq!(key.matching_step("", now).unwrap(), None);
        assert_eq!(key.matching_step("12345", now).unwrap(), None);
    }

    #[test]
    fn uri_and_qr_code() {
        let key = TotpKey::generate();
        let uri = key.uri("site.test:8080", "a@example.org").unwrap();
        assert!(uri.starts_with("otpauth://totp/site.test-8080:a%40example.org?"));
        assert!(uri.contains(&format!("secret={}", key.base32().unwrap())));
        assert!(
            qr_code_svg(&uri)
                .unwrap()
                .starts_with("data:image/svg+xml;utf-8,")
        );
    }
}
