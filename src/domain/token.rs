use std::fmt;

use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix that makes tokens recognisable in logs and by secret scanners.
const PREFIX: &str = "hgc_";
/// 32 random bytes in unpadded base64url are exactly 43 characters.
const BODY_LEN: usize = 43;
const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// An API token as handed to a user once: `hgc_` followed by 43 characters of unpadded
/// base64url (RFC 4648 §5) encoding 256 bits from the OS RNG.
///
/// base64url rather than hex keeps the token short (47 chars instead of 68) while staying
/// URL-, header- and shell-safe. Only `Token::hash` of it is ever stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn generate() -> Token {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        let mut s = String::with_capacity(PREFIX.len() + BODY_LEN);
        s.push_str(PREFIX);
        s.push_str(&base64url_nopad(&bytes));
        Token(s)
    }

    /// The full secret, for showing to the user exactly once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the full token string (prefix included).
    ///
    /// A fast hash is correct here, unlike for passwords: the token carries 256 bits of
    /// OS randomness, so there is nothing to brute-force and a slow KDF (argon2/bcrypt)
    /// would only add latency to every authenticated request.
    pub fn hash(presented: &str) -> [u8; 32] {
        Sha256::digest(presented.as_bytes()).into()
    }

    /// Cheap shape check (prefix, length, alphabet) to reject garbage before hashing.
    pub fn is_well_formed(s: &str) -> bool {
        s.strip_prefix(PREFIX)
            .is_some_and(|body| body.len() == BODY_LEN && body.bytes().all(|b| B64URL.contains(&b)))
    }
}

/// Never print the secret, even in debug logs.
impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(hgc_<redacted>)")
    }
}

/// Does `presented` hash to `stored_hash`? The comparison is constant-time so response
/// timing does not reveal how many leading hash bytes matched.
pub fn token_matches(presented: &str, stored_hash: &[u8]) -> bool {
    let h = Token::hash(presented);
    // subtle's slice ct_eq returns false on length mismatch (length is not secret).
    bool::from(h.as_slice().ct_eq(stored_hash))
}

/// Minimal unpadded base64url encoder: the crate deliberately has no base64 dependency.
fn base64url_nopad(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        // A chunk of k bytes yields k+1 significant sextets.
        for i in 0..=chunk.len() {
            let idx = ((n >> (18 - 6 * i)) & 0x3f) as usize;
            out.push(char::from(B64URL.get(idx).copied().unwrap_or(b'A')));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_token_shape() {
        let t = Token::generate();
        let s = t.expose();
        assert!(s.starts_with("hgc_"));
        assert_eq!(s.len(), 4 + 43);
        assert!(Token::is_well_formed(s), "{s}");
        assert_ne!(Token::generate(), t, "two tokens must differ");
        assert!(
            !format!("{t:?}").contains(&s[4..]),
            "Debug leaks the secret"
        );
    }

    #[test]
    fn well_formed_rejects_garbage() {
        assert!(!Token::is_well_formed(""));
        assert!(!Token::is_well_formed("hgc_short"));
        assert!(!Token::is_well_formed(&format!("xyz_{}", "A".repeat(43))));
        assert!(!Token::is_well_formed(&format!("hgc_{}", "+".repeat(43))));
        assert!(!Token::is_well_formed(&format!("hgc_{}", "A".repeat(44))));
        assert!(Token::is_well_formed(&format!(
            "hgc_{}",
            "A-_z9".repeat(8) + "abc"
        )));
    }

    #[test]
    fn base64url_matches_rfc4648_vectors() {
        // RFC 4648 §10 vectors, unpadded.
        assert_eq!(base64url_nopad(b""), "");
        assert_eq!(base64url_nopad(b"f"), "Zg");
        assert_eq!(base64url_nopad(b"fo"), "Zm8");
        assert_eq!(base64url_nopad(b"foo"), "Zm9v");
        assert_eq!(base64url_nopad(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url_nopad(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url_nopad(&[0u8; 32]).len(), 43);
    }

    #[test]
    fn hash_is_sha256_of_the_string() {
        assert_eq!(
            hex::encode(Token::hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn matches_only_the_right_token() {
        let t = Token::generate();
        let stored = Token::hash(t.expose());
        assert!(token_matches(t.expose(), &stored));
        assert!(!token_matches(Token::generate().expose(), &stored));
        // One character off, and a truncated stored hash, both fail.
        let mut wrong = t.expose().to_owned();
        let last = if wrong.ends_with('A') { "B" } else { "A" };
        wrong.replace_range(wrong.len() - 1.., last);
        assert!(!token_matches(&wrong, &stored));
        assert!(!token_matches(t.expose(), &stored[..31]));
        assert!(!token_matches(t.expose(), &[]));
    }
}
