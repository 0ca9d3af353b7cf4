//! HMAC-SHA256 (RFC 2104 over FIPS 180-4, the `hmac` and `sha2` crates), the one place every key derivation, MAC and signature of chipflap computes it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The 32-byte HMAC-SHA256 of the concatenation of `parts` under `key` (any length: HMAC
/// hashes a key longer than its 64-byte block and pads a shorter one, so this cannot fail).
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = keyed(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// True when `tag` is the HMAC-SHA256 of `message` under `key`, compared in constant time
/// (`Mac::verify_slice`); a tag of another length is false.
pub fn hmac_sha256_matches(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    let mut mac = keyed(key);
    mac.update(message);
    mac.verify_slice(tag).is_ok()
}

fn keyed(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 (a key shorter than the block).
    #[test]
    fn rfc_4231_test_case_2() {
        let tag = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(hmac_sha256_matches(
            b"Jefe",
            b"what do ya want for nothing?",
            &tag
        ));
        assert!(!hmac_sha256_matches(
            b"Jefe",
            b"what do ya want for nothing!",
            &tag
        ));
        assert!(!hmac_sha256_matches(
            b"Jefe",
            b"what do ya want for nothing?",
            &tag[..31]
        ));
    }
}
