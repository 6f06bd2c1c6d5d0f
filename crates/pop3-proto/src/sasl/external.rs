//! EXTERNAL (RFC 4422 Appendix A): the identity comes from outside SASL (in POP3, the TLS
//! client certificate); the one client message is the authorization identity, possibly
//! empty (R4422-EXT-1).

use alloc::vec::Vec;

use super::{Exchange, Next, SaslError, plain::prepare_authzid};

/// The client half.
pub(super) struct Client {
    pub(super) authzid: Vec<u8>,
    pub(super) sent: bool,
    pub(super) resent: bool,
}

impl Client {
    pub(super) fn initial_response(&mut self) -> Vec<u8> {
        self.sent = true;
        self.authzid.clone()
    }

    pub(super) fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        // EXTERNAL has no challenges besides the empty one asking for the message.
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

/// The client's message: the authzid, UTF-8, prepared unless empty (R5034-AUTH-15).
/// Whether the external credentials map to it is the application's call (R4422-EXT-2).
pub(super) fn server_message(msg: &[u8], ex: &mut Exchange) -> Result<Next, SaslError> {
    ex.authzid = prepare_authzid(msg)?;
    ex.user.clear();
    Ok(Next::CheckExternal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authzid_rules() {
        let mut ex = Exchange::default();
        assert_eq!(server_message(b"", &mut ex), Ok(Next::CheckExternal));
        assert_eq!(ex.authzid, "");
        assert_eq!(server_message(b"alice", &mut ex), Ok(Next::CheckExternal));
        assert_eq!(ex.authzid, "alice");
        assert_eq!(
            server_message(b"a\0b", &mut ex),
            Err(SaslError::ProhibitedCharacter)
        );
        assert_eq!(
            server_message(b"\xff", &mut ex),
            Err(SaslError::InvalidUtf8)
        );
        let mut c = Client {
            authzid: b"alice".to_vec(),
            sent: false,
            resent: false,
        };
        assert_eq!(c.finish(), Err(SaslError::Incomplete));
        assert_eq!(c.respond(b"").unwrap(), b"alice");
        assert_eq!(c.finish(), Ok(()));
        assert!(c.respond(b"").is_err());
        assert!(c.respond(b"x").is_err());
    }
}
