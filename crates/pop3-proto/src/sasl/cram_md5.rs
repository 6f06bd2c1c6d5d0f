//! CRAM-MD5 (RFC 2195): the server challenges with a fresh msg-id `<nonce@host>`; the client
//! answers `user SP hex(HMAC-MD5(secret, challenge))` in lower-case hex.
//!
//! The server side needs the shared secret (the plaintext password) to verify; the
//! application does that with [`verify`] when [`SaslServer`](super::SaslServer) asks with
//! [`ServerStep::CheckCramMd5`](super::ServerStep::CheckCramMd5).
//!
//! ```
//! use pop3_proto::sasl::cram_md5;
//! let challenge = b"<1896.697170952@postoffice.reston.mci.net>";
//! let digest = cram_md5::digest(b"tanstaaftanstaaf", challenge);
//! assert_eq!(&digest, b"b913a602c7eda7a495b4e6e7334d3890");
//! assert!(cram_md5::verify(b"tanstaaftanstaaf", challenge, &digest));
//! ```

use alloc::{string::String, vec::Vec};

use hmac::{Hmac, KeyInit as _, Mac as _};
use md5::Md5;

use super::{Exchange, Next, SaslError, ct_eq, push_hex};
use crate::Secret;

/// HMAC-MD5 of `challenge` keyed with `secret`, as 32 lower-case hex digits (R2195-2).
#[must_use]
pub fn digest(secret: &[u8], challenge: &[u8]) -> [u8; 32] {
    let mut hex = [0u8; 32];
    // HMAC takes keys of any length; the error arm cannot happen and yields a digest
    // that matches nothing.
    let Ok(mut mac) = Hmac::<Md5>::new_from_slice(secret) else {
        return hex;
    };
    mac.update(challenge);
    let raw = mac.finalize().into_bytes();
    let mut out = Vec::with_capacity(32);
    push_hex(&raw, &mut out);
    for (dst, src) in hex.iter_mut().zip(&out) {
        *dst = *src;
    }
    hex
}

/// Checks a client's digest for `challenge` against `secret` (R2195-3), in constant time
/// for digests of the right length. Upper-case hex is accepted.
#[must_use]
pub fn verify(secret: &[u8], challenge: &[u8], client_digest: &[u8]) -> bool {
    if client_digest.len() != 32 {
        return false;
    }
    let expected = digest(secret, challenge);
    let mut lowered = [0u8; 32];
    for (dst, src) in lowered.iter_mut().zip(client_digest) {
        *dst = src.to_ascii_lowercase();
    }
    ct_eq(&expected, &lowered)
}

/// The client's whole answer: `user SP digest` (before base64).
#[must_use]
pub fn response(user: &str, secret: &[u8], challenge: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(user.len() + 33);
    out.extend_from_slice(user.as_bytes());
    out.push(b' ');
    out.extend_from_slice(&digest(secret, challenge));
    out
}

/// The challenge `<nonce@hostname>` (R2195-1). A nonce with characters a msg-id cannot
/// hold is base64-encoded first; an unusable hostname is replaced by `localhost`.
pub(super) fn challenge(nonce: &[u8], hostname: &str, out: &mut Vec<u8>) {
    let atext = |b: &u8| matches!(b, 0x21..=0x7e) && !matches!(b, b'<' | b'>' | b'@');
    out.clear();
    out.push(b'<');
    if nonce.iter().all(atext) {
        out.extend_from_slice(nonce);
    } else {
        super::encode_base64(nonce, out);
    }
    out.push(b'@');
    if !hostname.is_empty() && hostname.as_bytes().iter().all(atext) {
        out.extend_from_slice(hostname.as_bytes());
    } else {
        out.extend_from_slice(b"localhost");
    }
    out.push(b'>');
}

/// The client half.
pub(super) struct Client {
    pub(super) user: String,
    pub(super) password: Secret<Vec<u8>>,
    pub(super) done: bool,
}

impl Client {
    pub(super) fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        if self.done || challenge.is_empty() {
            return Err(SaslError::MalformedChallenge);
        }
        self.done = true;
        Ok(response(&self.user, self.password.expose(), challenge))
    }

    pub(super) const fn finish(&self) -> Result<(), SaslError> {
        if self.done {
            Ok(())
        } else {
            Err(SaslError::Incomplete)
        }
    }
}

/// Parses `user SP digest` into `ex.user` and `ex.secret` (the digest as sent). The user
/// name is everything before the last space, so names with spaces work.
pub(super) fn server_response(response: &[u8], ex: &mut Exchange) -> Result<Next, SaslError> {
    let Some(space) = response.iter().rposition(|&b| b == b' ') else {
        return Err(SaslError::MalformedResponse);
    };
    let (user, digest) = (&response[..space], &response[space + 1..]);
    let user = core::str::from_utf8(user).map_err(|_| SaslError::InvalidUtf8)?;
    if user.is_empty() {
        return Err(SaslError::EmptyString);
    }
    if digest.len() != 32 || !digest.iter().all(u8::is_ascii_hexdigit) {
        return Err(SaslError::MalformedResponse);
    }
    ex.user = user.into();
    ex.secret.clear();
    ex.secret.extend_from_slice(digest);
    Ok(Next::CheckCramMd5)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &[u8] = b"<1896.697170952@postoffice.reston.mci.net>";

    #[test]
    fn rfc2195_vector_r2195_2() {
        let r = response("tim", b"tanstaaftanstaaf", CHALLENGE);
        assert_eq!(r, b"tim b913a602c7eda7a495b4e6e7334d3890");
        let mut b64 = Vec::new();
        super::super::encode_base64(&r, &mut b64);
        assert_eq!(b64, b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
    }

    #[test]
    fn verify_r2195_3() {
        let good = b"b913a602c7eda7a495b4e6e7334d3890";
        assert!(verify(b"tanstaaftanstaaf", CHALLENGE, good));
        assert!(verify(
            b"tanstaaftanstaaf",
            CHALLENGE,
            &good.to_ascii_uppercase()
        ));
        assert!(!verify(b"tanstaaftanstaaF", CHALLENGE, good));
        assert!(!verify(b"tanstaaftanstaaf", b"<1896.697170953@x>", good));
        for i in 0..32 {
            let mut bad = *good;
            bad[i] = if bad[i] == b'0' { b'1' } else { b'0' };
            assert!(!verify(b"tanstaaftanstaaf", CHALLENGE, &bad), "digit {i}");
        }
        assert!(!verify(b"tanstaaftanstaaf", CHALLENGE, &good[..31]));
    }

    #[test]
    fn challenge_is_a_msg_id_r2195_1() {
        let mut c = Vec::new();
        challenge(b"1896.697170952", "postoffice.reston.mci.net", &mut c);
        assert_eq!(c, CHALLENGE);
        challenge(b"a b<c>", "", &mut c);
        assert!(
            crate::apop::is_valid_timestamp(&c),
            "{:?}",
            c.escape_ascii()
        );
        assert!(c.ends_with(b"@localhost>"));
        challenge(b"\x00\xff", "bad host", &mut c);
        assert!(
            crate::apop::is_valid_timestamp(&c),
            "{:?}",
            c.escape_ascii()
        );
    }

    #[test]
    fn server_parses_user_with_spaces() {
        let mut ex = Exchange::default();
        let r = response("tim smith", b"pw", CHALLENGE);
        assert_eq!(server_response(&r, &mut ex), Ok(Next::CheckCramMd5));
        assert_eq!(ex.user, "tim smith");
        for bad in [
            &b"tim"[..],
            b" b913a602c7eda7a495b4e6e7334d3890",
            b"tim b913a602c7eda7a495b4e6e7334d389",
            b"tim b913a602c7eda7a495b4e6e7334d389g",
            b"tim b913a602c7eda7a495b4e6e7334d3890 ",
        ] {
            assert!(
                server_response(bad, &mut ex).is_err(),
                "{:?}",
                bad.escape_ascii()
            );
        }
    }
}
