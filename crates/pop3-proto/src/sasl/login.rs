//! LOGIN (draft-murchison-sasl-login-00): the server asks for the user name, then the
//! password; the client ignores what the challenges say (RLOGIN-2).

use alloc::{string::String, vec::Vec};

use super::{Exchange, Next, SaslError};
use crate::Secret;

/// The challenges: the `Username:`/`Password:` form a widely deployed client needs
/// (draft §2.2, RLOGIN-1).
pub(super) const USER_CHALLENGE: &[u8] = b"Username:";
/// See [`USER_CHALLENGE`].
pub(super) const PASSWORD_CHALLENGE: &[u8] = b"Password:";

/// The client half.
pub(super) struct Client {
    pub(super) user: Vec<u8>,
    pub(super) password: Secret<Vec<u8>>,
    /// Answers given so far (0, 1 or 2).
    pub(super) answered: u8,
}

impl Client {
    pub(super) fn respond(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        // The challenge text is ignored (RLOGIN-2): the draft's own example ends it in NUL.
        let answer = match self.answered {
            0 => self.user.clone(),
            1 => self.password.expose().clone(),
            _ => return Err(SaslError::MalformedChallenge),
        };
        self.answered += 1;
        Ok(answer)
    }

    pub(super) const fn finish(&self) -> Result<(), SaslError> {
        if self.answered == 2 {
            Ok(())
        } else {
            Err(SaslError::Incomplete)
        }
    }
}

/// Where the server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Server {
    AwaitUser,
    AwaitPassword,
    Done,
}

impl Server {
    /// `AUTH LOGIN` with or without the user name as initial response (RLOGIN-6). An empty
    /// initial response (`=`) is treated like none.
    pub(super) fn start(
        &mut self,
        initial: Option<&[u8]>,
        ex: &mut Exchange,
    ) -> Result<Next, SaslError> {
        match initial {
            Some(user) if !user.is_empty() => self.step(user, ex),
            _ => {
                *self = Self::AwaitUser;
                ex.challenge.clear();
                ex.challenge.extend_from_slice(USER_CHALLENGE);
                Ok(Next::Challenge)
            }
        }
    }

    pub(super) fn step(&mut self, response: &[u8], ex: &mut Exchange) -> Result<Next, SaslError> {
        match *self {
            Self::AwaitUser => {
                *self = Self::Done;
                // RLOGIN-5: user names are UTF-8; no NUL, CR or LF.
                let user = core::str::from_utf8(response).map_err(|_| SaslError::InvalidUtf8)?;
                if user.is_empty() {
                    return Err(SaslError::EmptyString);
                }
                if user.bytes().any(|b| matches!(b, 0 | b'\r' | b'\n')) {
                    return Err(SaslError::MalformedResponse);
                }
                ex.user = String::from(user);
                ex.challenge.clear();
                ex.challenge.extend_from_slice(PASSWORD_CHALLENGE);
                *self = Self::AwaitPassword;
                Ok(Next::Challenge)
            }
            Self::AwaitPassword => {
                *self = Self::Done;
                // RLOGIN-5: any octets except NUL, CR and LF; not prepared (binary allowed).
                if response.is_empty() {
                    return Err(SaslError::EmptyString);
                }
                if response.iter().any(|b| matches!(b, 0 | b'\r' | b'\n')) {
                    return Err(SaslError::MalformedResponse);
                }
                ex.authzid.clear();
                ex.secret.clear();
                ex.secret.extend_from_slice(response);
                Ok(Next::CheckPassword)
            }
            Self::Done => Err(SaslError::OutOfSequence),
        }
    }
}
