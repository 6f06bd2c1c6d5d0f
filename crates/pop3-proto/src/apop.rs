//! APOP authentication (RFC 1939 §7).
//!
//! The server announces a timestamp (an RFC 822 msg-id such as
//! `<1896.697170952@dbc.mtview.ca.us>`) in its greeting; the client proves
//! knowledge of the shared secret by sending the MD5 digest of the timestamp
//! followed by the secret, as 32 lower-case hex digits.

use md5::{Digest, Md5};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Computes the APOP digest: MD5 over `timestamp` (including its `<` and
/// `>`) followed by `secret`, as 32 lower-case ASCII hex digits.
#[must_use]
pub fn digest(timestamp: &[u8], secret: &[u8]) -> [u8; 32] {
    let mut hasher = Md5::new();
    hasher.update(timestamp);
    hasher.update(secret);
    let raw = hasher.finalize();
    let mut hex = [0u8; 32];
    for (pair, byte) in hex.chunks_exact_mut(2).zip(raw.iter()) {
        if let [hi, lo] = pair {
            *hi = HEX[usize::from(byte >> 4)];
            *lo = HEX[usize::from(byte & 0x0f)];
        }
    }
    hex
}

/// Checks a client's APOP digest against the expected one.
///
/// The comparison runs over all 32 digits without an early exit, so its
/// timing does not reveal how many leading digits were right. Upper-case hex
/// from the client is accepted (it is lower-cased while comparing). A digest
/// of the wrong length is rejected.
#[must_use]
pub fn verify(timestamp: &[u8], secret: &[u8], client_digest: &[u8]) -> bool {
    // The length is not secret, so rejecting it up front leaks nothing.
    if client_digest.len() != 32 {
        return false;
    }
    let expected = digest(timestamp, secret);
    let mut diff = 0u8;
    for (want, got) in expected.iter().zip(client_digest) {
        // `to_ascii_lowercase` is a branch-free mask, keeping this constant time.
        diff |= want ^ got.to_ascii_lowercase();
    }
    // Keep the optimiser from turning the fold into an early-exit compare.
    core::hint::black_box(diff) == 0
}

/// Returns `true` when `ts` is an acceptable APOP timestamp: an RFC 822
/// msg-id `<local@domain>` made of printable ASCII (0x21..=0x7E), with no
/// `<` or `>` inside, exactly one `@`, and non-empty text on both sides of it.
///
/// Clients must refuse APOP against anything else (R1939-APOP-1/7): a
/// malformed timestamp gives no replay protection and may not hash the same
/// way on both sides.
#[must_use]
pub fn is_valid_timestamp(ts: &[u8]) -> bool {
    let [b'<', inner @ .., b'>'] = ts else {
        return false;
    };
    let printable = inner
        .iter()
        .all(|&b| matches!(b, 0x21..=0x7e) && b != b'<' && b != b'>');
    if !printable {
        return false;
    }
    let mut parts = inner.split(|&b| b == b'@');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty()
    )
}

/// Finds the APOP timestamp in the text of a server greeting: the first
/// `<...>` span (brackets included) that [`is_valid_timestamp`] accepts.
#[must_use]
pub fn find_timestamp(greeting_text: &[u8]) -> Option<&[u8]> {
    let mut from = 0;
    while let Some(open) = greeting_text
        .get(from..)
        .and_then(|rest| memchr::memchr(b'<', rest))
        .map(|i| from + i)
    {
        let after = greeting_text.get(open..)?;
        let close = memchr::memchr(b'>', after)?;
        let candidate = after.get(..=close)?;
        if is_valid_timestamp(candidate) {
            return Some(candidate);
        }
        // A later `<` may still start a valid span (e.g. `<junk <a@b>`).
        from = open + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_TS: &[u8] = b"<1896.697170952@dbc.mtview.ca.us>";
    const RFC_DIGEST: &[u8] = b"c4c9334bac560ecc979e58001b3e22fb";

    #[test]
    fn rfc1939_vector() {
        assert_eq!(&digest(RFC_TS, b"tanstaaf"), RFC_DIGEST);
        assert!(verify(RFC_TS, b"tanstaaf", RFC_DIGEST));
    }

    #[test]
    fn digest_is_lowercase_hex() {
        let d = digest(b"<x@y>", b"");
        assert!(d.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    }

    #[test]
    fn wrong_secret_fails() {
        assert!(!verify(RFC_TS, b"tanstaaF", RFC_DIGEST));
        assert!(!verify(
            b"<1896.697170953@dbc.mtview.ca.us>",
            b"tanstaaf",
            RFC_DIGEST
        ));
    }

    #[test]
    fn flipped_digit_fails_anywhere() {
        for i in 0..RFC_DIGEST.len() {
            let mut bad = RFC_DIGEST.to_vec();
            bad[i] = if bad[i] == b'0' { b'1' } else { b'0' };
            assert!(!verify(RFC_TS, b"tanstaaf", &bad), "digit {i}");
        }
    }

    #[test]
    fn uppercase_client_digest_accepted() {
        let upper = RFC_DIGEST.to_ascii_uppercase();
        assert!(verify(RFC_TS, b"tanstaaf", &upper));
        let mut mixed = RFC_DIGEST.to_vec();
        // `c4c9...` -> `C4c9...`
        mixed[0] = b'C';
        assert!(verify(RFC_TS, b"tanstaaf", &mixed));
    }

    #[test]
    fn wrong_length_fails() {
        assert!(!verify(RFC_TS, b"tanstaaf", &RFC_DIGEST[..31]));
        let mut long = RFC_DIGEST.to_vec();
        long.push(b'0');
        assert!(!verify(RFC_TS, b"tanstaaf", &long));
        assert!(!verify(RFC_TS, b"tanstaaf", b""));
    }

    #[test]
    fn timestamp_validity_table() {
        // (timestamp, valid) — R1939-APOP-1/7.
        let table: &[(&[u8], bool)] = &[
            (RFC_TS, true),
            (b"<a@b>", true),
            (b"<1.2.3@host.example>", true),
            (b"<!#$%&'*+-/=?^_`{|}~@x>", true),
            (b"<\x80\xF1@x>", false),
            (b"<a b@c>", false),
            (b"<a\t@c>", false),
            (b"<a@b\x7f>", false),
            (b"<@b>", false),
            (b"<a@>", false),
            (b"<ab>", false),
            (b"<a@b@c>", false),
            (b"<a<b@c>", false),
            (b"<a>b@c>", false),
            (b"<>", false),
            (b"<", false),
            (b">", false),
            (b"", false),
            (b"a@b", false),
            (b"<a@b", false),
            (b"a@b>", false),
            (b" <a@b>", false),
        ];
        for &(ts, want) in table {
            assert_eq!(is_valid_timestamp(ts), want, "{:?}", ts.escape_ascii());
        }
    }

    #[test]
    fn find_timestamp_in_greetings() {
        let table: &[(&[u8], Option<&[u8]>)] = &[
            (
                b"POP3 server ready <1896.697170952@dbc.mtview.ca.us>",
                Some(RFC_TS),
            ),
            (b"ready <a@b> <c@d>", Some(b"<a@b>")),
            (b"ready <no-at> <c@d>", Some(b"<c@d>")),
            (b"ready <junk <c@d>", Some(b"<c@d>")),
            (b"ready <a b@c>", None),
            (b"ready <\x80\xF1@x>", None),
            (b"ready <a@b", None),
            (b"ready a@b>", None),
            (b"ready", None),
            (b"", None),
        ];
        for &(text, want) in table {
            assert_eq!(find_timestamp(text), want, "{:?}", text.escape_ascii());
        }
    }
}
