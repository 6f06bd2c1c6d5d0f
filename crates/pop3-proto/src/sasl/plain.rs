//! PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd` in one client message.

use alloc::{string::String, vec::Vec};

use super::{Exchange, Next, SaslError, saslprep::saslprep_bytes};
use crate::Secret;

/// The client message (R4616-1). A NUL inside a field cannot be represented; the server
/// will refuse the message (R4616-2).
pub(super) fn client_message(authzid: &str, authcid: &str, password: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(authzid.len() + authcid.len() + password.len() + 2);
    m.extend_from_slice(authzid.as_bytes());
    m.push(0);
    m.extend_from_slice(authcid.as_bytes());
    m.push(0);
    m.extend_from_slice(password.as_bytes());
    m
}

/// The client half: one message, sent as the initial response or after an empty challenge.
pub(super) struct Client {
    pub(super) message: Secret<Vec<u8>>,
    pub(super) sent: bool,
    pub(super) resent: bool,
}

impl Client {
    pub(super) fn initial_response(&mut self) -> Vec<u8> {
        self.sent = true;
        self.message.expose().clone()
    }

    pub(super) fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        // The only challenge PLAIN knows is the empty one asking for the message.
        if !challenge.is_empty() || self.resent {
            return Err(SaslError::MalformedChallenge);
        }
        self.resent = true;
        Ok(self.initial_response())
    }

    pub(super) const fn finish(&self) -> Result<(), SaslError> {
        if self.sent {
            Ok(())
        } else {
            Err(SaslError::Incomplete)
        }
    }
}

/// Parses and prepares the client message into `ex` (authzid, user, secret).
///
/// Exactly two NULs (R4616-2); every field UTF-8 and prepared with SASLprep (R4616-5,
/// R5034-AUTH-15); authcid and password must not prepare to empty; a non-empty authzid must
/// not either. Fields of any length are accepted (R4616-3: at least 255 octets).
pub(super) fn server_message(message: &[u8], ex: &mut Exchange) -> Result<Next, SaslError> {
    let mut fields = message.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(SaslError::MalformedResponse);
    };
    let user = saslprep_bytes(authcid)?;
    let password = saslprep_bytes(password)?;
    if user.is_empty() || password.is_empty() {
        return Err(SaslError::EmptyString);
    }
    ex.authzid = prepare_authzid(authzid)?;
    ex.user = String::from(user);
    ex.secret.clear();
    ex.secret.extend_from_slice(password.as_bytes());
    Ok(Next::CheckPassword)
}

/// An authorization identity: empty stays empty (act as the authentication identity);
/// otherwise SASLprep, which must not fail or give the empty string (R5034-AUTH-15).
pub(super) fn prepare_authzid(authzid: &[u8]) -> Result<String, SaslError> {
    if authzid.is_empty() {
        return Ok(String::new());
    }
    let prepared = saslprep_bytes(authzid)?;
    if prepared.is_empty() {
        return Err(SaslError::EmptyString);
    }
    Ok(String::from(prepared))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(m: &[u8]) -> Result<Exchange, SaslError> {
        let mut ex = Exchange::default();
        server_message(m, &mut ex).map(|_| ex)
    }

    #[test]
    fn rfc4616_message_r4616_1() {
        let m = client_message("", "tim", "tanstaaftanstaaf");
        let mut b64 = Vec::new();
        super::super::encode_base64(&m, &mut b64);
        assert_eq!(b64, b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    }

    #[test]
    fn exactly_two_nuls_r4616_2() {
        for bad in [&b"a\0b\0c\0d"[..], b"ab", b"a\0b", b"\0\0", b"\0tim\0"] {
            assert!(parse(bad).is_err(), "{:?}", bad.escape_ascii());
        }
        let ex = parse(b"\0tim\0tanstaaftanstaaf").unwrap();
        assert_eq!((ex.authzid.as_str(), ex.user.as_str()), ("", "tim"));
        assert_eq!(ex.secret, b"tanstaaftanstaaf");
    }

    #[test]
    fn authzid_is_passed_up_r4616_4() {
        let ex = parse(b"Ursel\0Kurt\0xipj3plmq").unwrap();
        assert_eq!((ex.authzid.as_str(), ex.user.as_str()), ("Ursel", "Kurt"));
    }

    #[test]
    fn long_fields_r4616_3() {
        let long = "x".repeat(255);
        let m = client_message(&long, &long, &long);
        let ex = parse(&m).unwrap();
        assert_eq!(ex.user.len(), 255);
        assert_eq!(ex.secret.len(), 255);
    }

    #[test]
    fn preparation_r4616_5_and_r5034_auth_15() {
        // Password that prepares to empty.
        assert_eq!(
            parse("\0tim\0\u{00AD}".as_bytes()).err(),
            Some(SaslError::EmptyString)
        );
        // Prohibited control character in the authzid.
        assert_eq!(
            parse(b"a\x07b\0tim\0pw").err(),
            Some(SaslError::ProhibitedCharacter)
        );
        assert_eq!(parse(b"\0\0pw").err(), Some(SaslError::EmptyString));
        assert_eq!(parse(b"\0t\xffm\0pw").err(), Some(SaslError::InvalidUtf8));
        // Mapping applies: the password's non-ASCII space becomes a space.
        let ex = parse("\0I\u{00AD}X\0pass\u{00A0}word".as_bytes()).unwrap();
        assert_eq!(ex.user, "IX");
        assert_eq!(ex.secret, b"pass word");
    }
}
