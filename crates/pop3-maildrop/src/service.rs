//! [`MailService`]: the application side of a POP3 server session — credentials, SASL and a
//! [`Store`] — answering the server machine's decisions. Every server adapter and `pop3d`
//! use it, so only byte moving is left to them.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use pop3_maildrop::{MemoryStore, service::{MailService, Next, PlainPasswords}};
//! use pop3_proto::{ServerConnection, server::{ServerConfig, ServerDecision}};
//!
//! let store = MemoryStore::demo("alice");
//! let users = PlainPasswords::new([("alice", "secret")]);
//! let mut config = ServerConfig::new();
//! config.allow_plaintext_without_tls = true;
//! let mut conn = ServerConnection::new(Arc::new(config), Duration::ZERO, None).unwrap();
//! let mut service = MailService::new(&store, &users, b"nonce", "localhost");
//! conn.receive(Duration::ZERO, b"USER alice\r\nPASS secret\r\n");
//! let decision = ServerDecision::from(conn.poll_event().unwrap());
//! assert!(matches!(service.decide(&mut conn, decision), Next::Continue));
//! assert_eq!(conn.state(), pop3_proto::server::SessionState::Transaction);
//! ```

use std::{fmt, io::Read};

use pop3_proto::{
    Listing, ServerConnection,
    sasl::{Mechanism, SaslServer, ScramCredentials, ScramHash, ServerStep},
    server::{CloseReason, CommitOutcome, LoginRejection, ServerDecision},
};

use crate::{Maildrop, MessageError, Store};

/// Where passwords are checked. Implemented by `pop3d`'s passwd-file and by
/// [`PlainPasswords`] for tests and the demo.
pub trait Credentials: Send + Sync + fmt::Debug {
    /// True when `password` is `user`'s password (compare in constant time).
    fn verify_password(&self, user: &str, password: &[u8]) -> bool;

    /// The plaintext secret, for mechanisms that need it on the server (APOP, CRAM-MD5,
    /// and SCRAM keys derived on the fly). `None` disables those for this user.
    fn plaintext_secret(&self, user: &str) -> Option<Vec<u8>>;

    /// Stored SCRAM keys, if the user has them (no plaintext needed).
    fn scram_credentials(&self, _user: &str, _hash: ScramHash) -> Option<ScramCredentials> {
        None
    }
}

/// Users with plaintext passwords in memory (tests, the demo).
#[derive(Clone, Default)]
pub struct PlainPasswords {
    users: Vec<(String, Vec<u8>)>,
}

impl fmt::Debug for PlainPasswords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainPasswords")
            .field("users", &self.users.len())
            .finish()
    }
}

impl PlainPasswords {
    /// From (user, password) pairs.
    pub fn new<'a>(users: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            users: users
                .into_iter()
                .map(|(u, p)| (u.to_owned(), p.as_bytes().to_vec()))
                .collect(),
        }
    }
}

/// Compares without an early exit, so timing does not tell how much matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Credentials for PlainPasswords {
    fn verify_password(&self, user: &str, password: &[u8]) -> bool {
        self.plaintext_secret(user)
            .is_some_and(|p| constant_time_eq(&p, password))
    }

    fn plaintext_secret(&self, user: &str) -> Option<Vec<u8>> {
        self.users
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, p)| p.clone())
    }
}

/// What the adapter does next.
#[non_exhaustive]
pub enum Next<'a> {
    /// Nothing beyond draining the machine.
    Continue,
    /// Stream this reader with `body_chunk`/`body_end` (the pending RETR/TOP).
    SendMessage(Box<dyn Read + Send + 'a>),
    /// The session is over.
    Closed(CloseReason),
}

impl fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Continue => f.write_str("Continue"),
            Self::SendMessage(_) => f.write_str("SendMessage(..)"),
            Self::Closed(r) => write!(f, "Closed({r:?})"),
        }
    }
}

/// What a session did, for the one log line per session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionSummary {
    /// The logged-in user.
    pub user: Option<String>,
    /// How the user logged in (`USER`, `APOP` or a SASL mechanism name).
    pub method: Option<&'static str>,
    /// Messages retrieved (RETR) and their sizes.
    pub retrieved: u64,
    /// Octets of retrieved messages.
    pub retrieved_octets: u64,
    /// Messages deleted by the commit.
    pub deleted: u64,
    /// Failed logins.
    pub failed_logins: u32,
    /// Whether the commit failed.
    pub commit_failed: bool,
}

/// The application half of one server session.
pub struct MailService<'a> {
    store: &'a dyn Store,
    credentials: &'a dyn Credentials,
    nonce: Vec<u8>,
    hostname: String,
    maildrop: Option<Box<dyn Maildrop>>,
    sasl: Option<SaslServer>,
    summary: SessionSummary,
}

impl fmt::Debug for MailService<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailService")
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl<'a> MailService<'a> {
    /// A session's service. `nonce` is fresh random printable bytes (CRAM-MD5 challenge,
    /// SCRAM server nonce); `hostname` names the server in challenges.
    pub fn new(
        store: &'a dyn Store,
        credentials: &'a dyn Credentials,
        nonce: &[u8],
        hostname: &str,
    ) -> Self {
        Self {
            store,
            credentials,
            nonce: nonce.to_vec(),
            hostname: hostname.to_owned(),
            maildrop: None,
            sasl: None,
            summary: SessionSummary::default(),
        }
    }

    /// What happened so far.
    pub const fn summary(&self) -> &SessionSummary {
        &self.summary
    }

    /// Answers one decision. For [`Next::SendMessage`] the adapter streams the reader.
    pub fn decide(&mut self, conn: &mut ServerConnection, decision: ServerDecision) -> Next<'_> {
        match decision {
            ServerDecision::CheckPassword { user, password } => {
                let ok = self.credentials.verify_password(&user, password.expose());
                self.login(conn, &user, ok, "USER");
            }
            ServerDecision::CheckApop {
                user,
                timestamp,
                digest,
            } => {
                let ok = self
                    .credentials
                    .plaintext_secret(&user)
                    .is_some_and(|secret| pop3_proto::apop::verify(&timestamp, &secret, &digest));
                self.login(conn, &user, ok, "APOP");
            }
            ServerDecision::AuthStart {
                mechanism,
                initial_response,
            } => {
                let mut sasl = SaslServer::new(mechanism, &self.nonce, &self.hostname);
                let step = sasl.start(initial_response.as_ref().map(|r| r.expose().as_slice()));
                let owned = Step::from(step);
                self.sasl = Some(sasl);
                self.sasl_step(conn, owned);
            }
            ServerDecision::AuthResponse { response } => {
                let step = match &mut self.sasl {
                    Some(sasl) => Step::from(sasl.step(response.expose())),
                    None => Step::Failure,
                };
                self.sasl_step(conn, step);
            }
            ServerDecision::AuthAborted => self.sasl = None,
            ServerDecision::RetrieveMessage { index, top_lines } => {
                let Some(maildrop) = self.maildrop.as_mut() else {
                    // Cannot happen: the machine only asks after a login.
                    let _ = conn.message_unavailable(pop3_proto::server::Unavailable::StorageError);
                    return Next::Continue;
                };
                let size = maildrop.listing().size(index).unwrap_or(0);
                return match maildrop.open_message(index) {
                    Ok(reader) => {
                        if top_lines.is_none() {
                            self.summary.retrieved += 1;
                            self.summary.retrieved_octets += size;
                        }
                        Next::SendMessage(reader)
                    }
                    Err(e) => {
                        let _ = conn.message_unavailable(MessageError::unavailable(&e));
                        Next::Continue
                    }
                };
            }
            ServerDecision::Commit { deleted } => {
                let outcome = match self.maildrop.take() {
                    Some(maildrop) => {
                        let result = maildrop.commit(&deleted);
                        let outcome = crate::CommitError::outcome_of(&result);
                        if outcome == CommitOutcome::Committed {
                            self.summary.deleted = deleted.len() as u64;
                        } else {
                            self.summary.commit_failed = true;
                        }
                        outcome
                    }
                    None => CommitOutcome::Committed,
                };
                let _ = conn.commit_done(outcome);
            }
            ServerDecision::Closed(reason) => {
                // Dropping the maildrop releases it without changes (R1939-UPD-2).
                self.maildrop = None;
                return Next::Closed(reason);
            }
            _ => {}
        }
        Next::Continue
    }

    fn login(
        &mut self,
        conn: &mut ServerConnection,
        user: &str,
        verified: bool,
        method: &'static str,
    ) {
        if !verified {
            self.summary.failed_logins += 1;
            let _ = conn.reject_login(LoginRejection::BadCredentials);
            return;
        }
        match self.store.open(user) {
            Ok(maildrop) => {
                let listing: Listing = maildrop.listing().clone();
                self.maildrop = Some(maildrop);
                self.summary.user = Some(user.to_owned());
                self.summary.method = Some(method);
                let _ = conn.accept_login(listing);
            }
            Err(e) => {
                let _ = conn.reject_login(e.login_rejection());
            }
        }
    }

    fn sasl_step(&mut self, conn: &mut ServerConnection, mut step: Step) {
        let mechanism = self
            .sasl
            .as_ref()
            .map_or(Mechanism::Plain, SaslServer::mechanism);
        loop {
            let (user, ok) = match step {
                Step::Challenge(data) => {
                    let _ = conn.auth_challenge(&data);
                    return;
                }
                Step::Password(user, password) => {
                    let ok = self.credentials.verify_password(&user, &password);
                    (user, ok)
                }
                Step::Cram(user, challenge, digest) => {
                    let ok = self
                        .credentials
                        .plaintext_secret(&user)
                        .is_some_and(|secret| {
                            pop3_proto::sasl::cram_md5::verify(&secret, &challenge, &digest)
                        });
                    (user, ok)
                }
                Step::Lookup(user) => {
                    let creds = ScramHash::from_mechanism(mechanism).and_then(|hash| {
                        self.credentials.scram_credentials(&user, hash).or_else(|| {
                            let secret = self.credentials.plaintext_secret(&user)?;
                            let password = String::from_utf8(secret).ok()?;
                            // Salt derived per user so repeated logins see the same salt.
                            let salt =
                                pop3_proto::apop::digest(user.as_bytes(), b"pop3-scram-salt");
                            ScramCredentials::derive(hash, &password, &salt[..16], 4096).ok()
                        })
                    });
                    step = match &mut self.sasl {
                        Some(sasl) => Step::from(sasl.scram_credentials(creds)),
                        None => Step::Failure,
                    };
                    continue;
                }
                Step::Success(user) => (user, true),
                // Tokens and client certificates need an external verifier: not offered by
                // this service; the daemon configures only mechanisms it can check.
                Step::Token | Step::External | Step::Failure => (String::new(), false),
            };
            self.sasl = None;
            self.login(conn, &user, ok, mechanism.name());
            return;
        }
    }
}

/// A SASL step copied out of the mechanism, so the mechanism can be called again.
enum Step {
    Challenge(Vec<u8>),
    Password(String, Vec<u8>),
    Cram(String, Vec<u8>, Vec<u8>),
    Lookup(String),
    Success(String),
    Token,
    External,
    Failure,
}

impl From<Result<ServerStep<'_>, pop3_proto::sasl::SaslError>> for Step {
    fn from(step: Result<ServerStep<'_>, pop3_proto::sasl::SaslError>) -> Self {
        match step {
            Ok(ServerStep::Challenge(c)) => Self::Challenge(c.to_vec()),
            Ok(ServerStep::CheckPassword {
                authzid,
                user,
                password,
            }) if authzid.is_empty() || authzid == user => {
                Self::Password(user.to_owned(), password.expose().to_vec())
            }
            Ok(ServerStep::CheckCramMd5 {
                user,
                challenge,
                digest,
            }) => Self::Cram(user.to_owned(), challenge.to_vec(), digest.to_vec()),
            Ok(ServerStep::LookupScram { authzid, user })
                if authzid.is_empty() || authzid == user =>
            {
                Self::Lookup(user.to_owned())
            }
            Ok(ServerStep::Success { user, .. }) => Self::Success(user.to_owned()),
            Ok(ServerStep::CheckToken { .. }) => Self::Token,
            Ok(ServerStep::CheckExternal { .. }) => Self::External,
            _ => Self::Failure,
        }
    }
}
