//! SASL in POP3 (RFC 5034): mechanism names, the line framing both sides share, and the
//! mechanisms themselves as sans-IO state machines.
//!
//! The framing: `AUTH mech [initial-response]`, where the initial response is base64 or `=`
//! for an empty one; challenges are `+ base64`; each client answer is one base64 line, an
//! empty line for empty data, or `*` to cancel. Base64 is checked strictly (RFC 5034 §4: no
//! characters outside the alphabet, `=` only as final padding), so `=AAA`, `AAA=BBB` and
//! embedded spaces are rejected rather than skipped.
//!
//! The mechanisms: [`SaslClient`] is the client half of one exchange, for the client state
//! machine; [`SaslServer`] is the server half, driven by the decoded data of
//! [`ServerEvent::AuthStart`](crate::ServerEvent::AuthStart) and
//! [`AuthResponse`](crate::ServerEvent::AuthResponse). The server half asks the application
//! to verify ([`ServerStep`]) and never needs a plaintext password where the mechanism does
//! not: SCRAM works from [`ScramCredentials`]. Randomness (nonces, salts) always comes from
//! the caller.
//!
//! | mechanism | module | RFC |
//! |---|---|---|
//! | PLAIN | `plain` (private) | RFC 4616 |
//! | LOGIN | `login` (private) | draft-murchison-sasl-login-00 |
//! | CRAM-MD5 | [`cram_md5`] | RFC 2195 |
//! | SCRAM-SHA-1, SCRAM-SHA-256 | [`scram`] | RFC 5802, RFC 7677 |
//! | OAUTHBEARER, XOAUTH2 | `oauth` (private) | RFC 7628, Google/Microsoft |
//! | EXTERNAL | `external` (private) | RFC 4422 Appendix A |
//!
//! [`saslprep`](mod@saslprep) prepares names and passwords (RFC 4013).

use alloc::{string::String, vec::Vec};
use core::fmt;

use base64::Engine as _;

use crate::Secret;

pub mod cram_md5;
mod external;
mod login;
mod oauth;
mod plain;
pub mod saslprep;
pub mod scram;

pub use scram::{ScramCredentials, ScramHash};

/// SASL mechanisms this crate knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// `PLAIN` (RFC 4616): client-first, sends the password.
    Plain,
    /// `LOGIN` (draft-murchison-sasl-login): server challenges for user, then password.
    Login,
    /// `CRAM-MD5` (RFC 2195): server-first challenge–response.
    CramMd5,
    /// `SCRAM-SHA-1` (RFC 5802).
    ScramSha1,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `OAUTHBEARER` (RFC 7628).
    OAuthBearer,
    /// `XOAUTH2` (Google, Microsoft).
    XOAuth2,
    /// `EXTERNAL` (RFC 4422 Appendix A): identity from the TLS client certificate.
    External,
}

/// Who speaks first in a mechanism, which decides what the server does with `AUTH mech`
/// without an initial response (RFC 4422 §5, RFC 5034 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstMessage {
    /// The client's message comes first: without an initial response the server sends an
    /// empty challenge `+ ` and waits for it.
    Client,
    /// The server challenges first: an initial response is a protocol error.
    Server,
    /// LOGIN: the server challenges first, but clients commonly send the user name as an
    /// initial response (checklist RLOGIN-6), which is accepted.
    Either,
}

impl Mechanism {
    /// Every mechanism, strongest first (the order a client prefers them in).
    pub const ALL: [Self; 8] = [
        Self::ScramSha256,
        Self::ScramSha1,
        Self::OAuthBearer,
        Self::XOAuth2,
        Self::External,
        Self::CramMd5,
        Self::Plain,
        Self::Login,
    ];

    /// The IANA name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Login => "LOGIN",
            Self::CramMd5 => "CRAM-MD5",
            Self::ScramSha1 => "SCRAM-SHA-1",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::OAuthBearer => "OAUTHBEARER",
            Self::XOAuth2 => "XOAUTH2",
            Self::External => "EXTERNAL",
        }
    }

    /// Looks a name up, case-insensitively (RFC 5034 §5).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// Who speaks first.
    pub const fn first_message(self) -> FirstMessage {
        match self {
            Self::CramMd5 => FirstMessage::Server,
            Self::Login => FirstMessage::Either,
            _ => FirstMessage::Client,
        }
    }

    /// True when the mechanism hands the server a reusable secret: the password (PLAIN,
    /// LOGIN) or a bearer token (OAUTHBEARER, XOAUTH2). Such mechanisms are offered only
    /// over TLS by default (RFC 5034 §4, RFC 7628 §3).
    pub const fn sends_plaintext_secret(self) -> bool {
        matches!(
            self,
            Self::Plain | Self::Login | Self::OAuthBearer | Self::XOAuth2
        )
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a SASL line or mechanism step failed.
///
/// On the server every error means: answer with
/// [`reject_login(BadCredentials)`](crate::server::ServerConnection::reject_login). On the
/// client: cancel the exchange with `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaslError {
    /// Not strict base64 (RFC 5034 §4).
    InvalidBase64,
    /// Text that must be UTF-8 is not.
    InvalidUtf8,
    /// A server challenge the mechanism cannot parse or did not expect.
    MalformedChallenge,
    /// A client message the mechanism cannot parse or did not expect.
    MalformedResponse,
    /// SASLprep (RFC 4013 §2.3): a prohibited character.
    ProhibitedCharacter,
    /// SASLprep (RFC 4013 §2.4): the string breaks the bidi rule of RFC 3454 §6.
    InvalidBidi,
    /// A name or password that is empty, or prepares to the empty string (RFC 4616 §2,
    /// R4616-5).
    EmptyString,
    /// SCRAM: a `saslname` with an `=` not followed by `2C` or `3D`, or with a NUL
    /// (RFC 5802 §5.1, R5802-2).
    InvalidUsernameEncoding,
    /// SCRAM: the reserved mandatory-extension attribute `m=` (RFC 5802 §5.1, R5802-3).
    UnsupportedExtension,
    /// SCRAM: a nonce that is empty or not printable ASCII without `,` (RFC 5802 §7).
    InvalidNonce,
    /// SCRAM: the server's nonce does not extend the client's, or the client-final nonce
    /// is not the combined one (R5802-4).
    NonceMismatch,
    /// SCRAM: an iteration count of zero, not a positive number, or above
    /// [`scram::MAX_ITERATIONS`].
    InvalidIterationCount,
    /// SCRAM: the client asked for channel binding (`p=`), which is not implemented
    /// (R5802-10; no `-PLUS` mechanism is offered).
    ChannelBindingNotSupported,
    /// SCRAM: the `c=` attribute does not repeat the GS2 header (R5802-6).
    ChannelBindingMismatch,
    /// SCRAM: the server signature `v=` is wrong (R5802-7): the server does not know the
    /// password, whatever its final answer.
    ServerSignatureMismatch,
    /// SCRAM: the server said `+OK` before sending its verifier.
    MissingServerFinal,
    /// The mechanism's server reported an error: SCRAM `e=`, or an OAuth error JSON
    /// (R7628-5, XOA2-2; the JSON is kept in [`SaslClient::oauth_error`]).
    ServerError,
    /// OAuth: the `host` or `port` the client sent is not this server's (R7628-4).
    HostMismatch,
    /// OAuth: an `auth` value whose scheme is not `Bearer`.
    UnsupportedScheme,
    /// SCRAM: [`ScramCredentials`] from the application are unusable (zero iterations,
    /// empty salt, keys of the wrong length).
    InvalidCredentials,
    /// The server said `+OK` before the mechanism finished.
    Incomplete,
    /// A method was called out of order (e.g. [`SaslServer::step`] before
    /// [`SaslServer::start`], or after the exchange ended).
    OutOfSequence,
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidBase64 => "invalid base64",
            Self::InvalidUtf8 => "invalid UTF-8",
            Self::MalformedChallenge => "malformed or unexpected server challenge",
            Self::MalformedResponse => "malformed or unexpected client response",
            Self::ProhibitedCharacter => "SASLprep: prohibited character",
            Self::InvalidBidi => "SASLprep: invalid bidirectional text",
            Self::EmptyString => "empty name or password",
            Self::InvalidUsernameEncoding => "invalid username encoding",
            Self::UnsupportedExtension => "unsupported mandatory extension",
            Self::InvalidNonce => "invalid nonce",
            Self::NonceMismatch => "nonce mismatch",
            Self::InvalidIterationCount => "invalid iteration count",
            Self::ChannelBindingNotSupported => "channel binding not supported",
            Self::ChannelBindingMismatch => "channel binding data does not match",
            Self::ServerSignatureMismatch => "server signature mismatch",
            Self::MissingServerFinal => "server accepted without its final message",
            Self::ServerError => "the server reported an error",
            Self::HostMismatch => "host or port does not match the server",
            Self::UnsupportedScheme => "unsupported authorization scheme",
            Self::InvalidCredentials => "invalid stored credentials",
            Self::Incomplete => "exchange incomplete",
            Self::OutOfSequence => "call out of sequence",
        })
    }
}

impl core::error::Error for SaslError {}

/// One line a client sends during an exchange, or its initial response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientLine {
    /// `*`: the client cancels.
    Cancel,
    /// Data, decoded into the caller's buffer.
    Data,
}

/// Decodes a client continuation line into `out` (cleared first). An empty line is empty
/// data; `*` cancels.
pub fn decode_client_line(line: &[u8], out: &mut Vec<u8>) -> Result<ClientLine, SaslError> {
    out.clear();
    if line == b"*" {
        return Ok(ClientLine::Cancel);
    }
    decode_base64(line, out)?;
    Ok(ClientLine::Data)
}

/// Decodes an initial response (`=` is present-but-empty, RFC 5034 §4) into `out`.
pub fn decode_initial_response(ir: &[u8], out: &mut Vec<u8>) -> Result<(), SaslError> {
    out.clear();
    if ir == b"=" {
        return Ok(());
    }
    if ir.is_empty() {
        return Err(SaslError::InvalidBase64);
    }
    decode_base64(ir, out)
}

fn decode_base64(text: &[u8], out: &mut Vec<u8>) -> Result<(), SaslError> {
    base64::engine::general_purpose::STANDARD
        .decode_vec(text, out)
        .map_err(|_| SaslError::InvalidBase64)
}

/// Appends `data` as base64 (no line breaks).
pub fn encode_base64(data: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let len = base64::encoded_len(data.len(), true).unwrap_or(0);
    out.resize(start + len, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(data, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
}

/// Appends a challenge line `+ base64\r\n`; empty data gives exactly `+ \r\n` (R5034-AUTH-6).
pub fn encode_challenge(data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"+ ");
    encode_base64(data, out);
    out.extend_from_slice(b"\r\n");
}

// ---- shared helpers ----------------------------------------------------------------------

/// Compares two byte strings without an early exit on the first difference. Lengths are
/// not secret here (digests, keys and signatures have fixed lengths).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    core::hint::black_box(diff) == 0
}

/// Appends `bytes` as lower-case hex.
fn push_hex(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0x0f)]);
    }
}

/// The data the server-side steps borrow.
#[derive(Default)]
struct Exchange {
    /// The challenge to send, or (CRAM-MD5) the one that was sent.
    challenge: Vec<u8>,
    authzid: String,
    user: String,
    /// Password, token or CRAM-MD5 digest.
    secret: Vec<u8>,
}

/// Which [`ServerStep`] to show; the data lives in [`Exchange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Challenge,
    CheckPassword,
    CheckCramMd5,
    LookupScram,
    CheckToken,
    CheckExternal,
    Success,
    Failure,
}

// ---- client ------------------------------------------------------------------------------

/// The client half of one SASL exchange.
///
/// Drive it with the decoded data of the server's `+ ` lines; the client state machine
/// does the base64 and the framing. `Debug` never shows passwords or tokens.
///
/// ```
/// use pop3_proto::sasl::{Mechanism, SaslClient};
/// let mut c = SaslClient::plain("", "tim", "tanstaaftanstaaf");
/// assert_eq!(c.mechanism(), Mechanism::Plain);
/// assert_eq!(c.initial_response().unwrap(), b"\0tim\0tanstaaftanstaaf");
/// assert!(!format!("{c:?}").contains("tanstaaf"));
/// assert_eq!(c.finish(), Ok(()));
/// ```
pub struct SaslClient {
    mechanism: Mechanism,
    inner: ClientInner,
}

enum ClientInner {
    Plain(plain::Client),
    Login(login::Client),
    CramMd5(cram_md5::Client),
    Scram(scram::Client),
    OAuth(oauth::Client),
    External(external::Client),
}

impl fmt::Debug for SaslClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match &self.inner {
            ClientInner::Scram(c) => c.phase_name(),
            ClientInner::Login(c) => match c.answered {
                0 => "await-user-challenge",
                1 => "await-password-challenge",
                _ => "answered",
            },
            ClientInner::OAuth(c) if c.error.is_some() => "server-error",
            _ => "-",
        };
        f.debug_struct("SaslClient")
            .field("mechanism", &self.mechanism)
            .field("phase", &phase)
            .finish_non_exhaustive()
    }
}

impl SaslClient {
    /// PLAIN (RFC 4616): `authzid NUL authcid NUL password`; `authzid` is usually empty.
    /// Fields must not contain NUL (the server would refuse the message).
    pub fn plain(authzid: &str, authcid: &str, password: &str) -> Self {
        Self {
            mechanism: Mechanism::Plain,
            inner: ClientInner::Plain(plain::Client {
                message: Secret::new(plain::client_message(authzid, authcid, password)),
                sent: false,
                resent: false,
            }),
        }
    }

    /// LOGIN: answers the first challenge with `user`, the second with `password`, whatever
    /// the challenges say (RLOGIN-2).
    pub fn login(user: &str, password: &str) -> Self {
        Self {
            mechanism: Mechanism::Login,
            inner: ClientInner::Login(login::Client {
                user: user.as_bytes().to_vec(),
                password: Secret::new(password.as_bytes().to_vec()),
                answered: 0,
            }),
        }
    }

    /// CRAM-MD5 (RFC 2195): answers the challenge with `user` and the lower-case hex
    /// HMAC-MD5 keyed with `password`.
    pub fn cram_md5(user: &str, password: &str) -> Self {
        Self {
            mechanism: Mechanism::CramMd5,
            inner: ClientInner::CramMd5(cram_md5::Client {
                user: String::from(user),
                password: Secret::new(password.as_bytes().to_vec()),
                done: false,
            }),
        }
    }

    /// SCRAM-SHA-1 (RFC 5802). `client_nonce`: fresh random printable ASCII without `,`
    /// (e.g. 24 base64 characters); user and password are prepared with SASLprep.
    ///
    /// Errors: [`SaslError::InvalidNonce`], [`SaslError::EmptyString`] for an empty user,
    /// and the SASLprep errors ([`SaslError::ProhibitedCharacter`],
    /// [`SaslError::InvalidBidi`]).
    pub fn scram_sha1(user: &str, password: &str, client_nonce: &[u8]) -> Result<Self, SaslError> {
        Self::scram(ScramHash::Sha1, user, password, client_nonce)
    }

    /// SCRAM-SHA-256 (RFC 7677); see [`scram_sha1`](Self::scram_sha1).
    pub fn scram_sha256(
        user: &str,
        password: &str,
        client_nonce: &[u8],
    ) -> Result<Self, SaslError> {
        Self::scram(ScramHash::Sha256, user, password, client_nonce)
    }

    /// SCRAM with either hash; see [`scram_sha1`](Self::scram_sha1).
    pub fn scram(
        hash: ScramHash,
        user: &str,
        password: &str,
        client_nonce: &[u8],
    ) -> Result<Self, SaslError> {
        Ok(Self {
            mechanism: hash.mechanism(),
            inner: ClientInner::Scram(scram::Client::new(hash, user, password, client_nonce)?),
        })
    }

    /// XOAUTH2: `user=U ^A auth=Bearer T ^A ^A` (XOA2-1).
    pub fn xoauth2(user: &str, token: &str) -> Self {
        Self {
            mechanism: Mechanism::XOAuth2,
            inner: ClientInner::OAuth(oauth::Client::new(
                oauth::Kind::XOAuth2,
                oauth::xoauth2_message(user, token),
            )),
        }
    }

    /// OAUTHBEARER (RFC 7628 §3.1): GS2 header with the optional authzid, then `host`,
    /// `port` (each if given) and `auth=Bearer <token>`.
    pub fn oauthbearer(
        authzid: Option<&str>,
        token: &str,
        host: Option<&str>,
        port: Option<u16>,
    ) -> Self {
        Self {
            mechanism: Mechanism::OAuthBearer,
            inner: ClientInner::OAuth(oauth::Client::new(
                oauth::Kind::OAuthBearer,
                oauth::oauthbearer_message(authzid, token, host, port),
            )),
        }
    }

    /// EXTERNAL (RFC 4422 Appendix A): the authorization identity, empty to use the one
    /// the TLS client certificate maps to.
    pub fn external(authzid: &str) -> Self {
        Self {
            mechanism: Mechanism::External,
            inner: ClientInner::External(external::Client {
                authzid: authzid.as_bytes().to_vec(),
                sent: false,
                resent: false,
            }),
        }
    }

    /// The mechanism.
    pub const fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The client's first message for client-first mechanisms (raw bytes, not base64);
    /// `None` for server-first ones (CRAM-MD5, LOGIN). Whether it goes on the `AUTH` line
    /// (it must fit in 255 octets there, R5034-AUTH-7) is the caller's decision; if it does
    /// not, [`respond`](Self::respond) hands it out again for the server's empty challenge.
    pub fn initial_response(&mut self) -> Option<Vec<u8>> {
        match &mut self.inner {
            ClientInner::Plain(c) => Some(c.initial_response()),
            ClientInner::Scram(c) => Some(c.initial_response()),
            ClientInner::OAuth(c) => Some(c.initial_response()),
            ClientInner::External(c) => Some(c.initial_response()),
            ClientInner::Login(_) | ClientInner::CramMd5(_) => None,
        }
    }

    /// The answer to a decoded server challenge; called for every `+ ` line.
    ///
    /// For client-first mechanisms the first empty challenge asks for the first message
    /// (sent without initial response). SCRAM: server-first gives client-final; server-final
    /// (`v=`) is verified (R5802-7; a mismatch is [`SaslError::ServerSignatureMismatch`])
    /// and answered with empty data (RFC 5034 §4). OAUTHBEARER and XOAUTH2: an error JSON
    /// is answered with `%x01` or empty data (R7628-5, XOA2-2) and kept in
    /// [`oauth_error`](Self::oauth_error).
    ///
    /// On `Err` the caller cancels the exchange with `*` (R5034-AUTH-11).
    pub fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        match &mut self.inner {
            ClientInner::Plain(c) => c.respond(challenge),
            ClientInner::Login(c) => c.respond(challenge),
            ClientInner::CramMd5(c) => c.respond(challenge),
            ClientInner::Scram(c) => c.respond(challenge),
            ClientInner::OAuth(c) => c.respond(challenge),
            ClientInner::External(c) => c.respond(challenge),
        }
    }

    /// The server said `+OK`. `Ok` only when the mechanism is satisfied: SCRAM needs the
    /// verified server signature ([`SaslError::MissingServerFinal`] otherwise); after an
    /// OAuth error JSON it is [`SaslError::ServerError`]; every mechanism must have sent
    /// its messages ([`SaslError::Incomplete`]).
    pub const fn finish(&self) -> Result<(), SaslError> {
        match &self.inner {
            ClientInner::Plain(c) => c.finish(),
            ClientInner::Login(c) => c.finish(),
            ClientInner::CramMd5(c) => c.finish(),
            ClientInner::Scram(c) => c.finish(),
            ClientInner::OAuth(c) => c.finish(),
            ClientInner::External(c) => c.finish(),
        }
    }

    /// OAUTHBEARER or XOAUTH2: the error JSON the server sent (e.g.
    /// `{"status":"invalid_token"}`), to report or to find the discovery URL in.
    pub fn oauth_error(&self) -> Option<&[u8]> {
        match &self.inner {
            ClientInner::OAuth(c) => c.error.as_deref(),
            _ => None,
        }
    }
}

// ---- server ------------------------------------------------------------------------------

/// What the server half of a mechanism needs next. Data borrows the [`SaslServer`].
///
/// Every step maps to one [`ServerConnection`](crate::ServerConnection) call:
///
/// | step | the application |
/// |---|---|
/// | `Challenge(data)` | [`auth_challenge(data)`](crate::ServerConnection::auth_challenge) |
/// | `CheckPassword`, `CheckCramMd5`, `CheckToken`, `CheckExternal` | verifies, then [`accept_login`](crate::ServerConnection::accept_login) or [`reject_login`](crate::ServerConnection::reject_login); for a bad token optionally [`SaslServer::token_rejected`] first |
/// | `LookupScram` | [`SaslServer::scram_credentials`] |
/// | `Success` | `accept_login` (after checking `authzid`) |
/// | `Failure` | `reject_login(BadCredentials)` |
///
/// About `authzid` everywhere: empty means "act as `user`"; otherwise succeed only if
/// `user` may act as `authzid`, and log in as `authzid` (RFC 4616 §2, R4616-4).
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerStep<'a> {
    /// Send this challenge.
    Challenge(&'a [u8]),
    /// PLAIN, LOGIN: compare the password. PLAIN's user, authzid and password are prepared
    /// with SASLprep (R4616-5), so compare against a prepared stored password; LOGIN's
    /// password is the raw octets (RLOGIN-5). `authzid` is empty for LOGIN.
    CheckPassword {
        /// Authorization identity (may be empty).
        authzid: &'a str,
        /// Authentication identity.
        user: &'a str,
        /// The password.
        password: Secret<&'a [u8]>,
    },
    /// CRAM-MD5: check with [`cram_md5::verify`]`(secret, challenge, digest)`.
    CheckCramMd5 {
        /// The user name.
        user: &'a str,
        /// The challenge that was sent, brackets included.
        challenge: &'a [u8],
        /// The client's 32 hex digits.
        digest: &'a [u8],
    },
    /// SCRAM: look the user up and answer with [`SaslServer::scram_credentials`].
    LookupScram {
        /// Authorization identity from the GS2 header (may be empty).
        authzid: &'a str,
        /// The user name, decoded and prepared with SASLprep (R5802-2).
        user: &'a str,
    },
    /// OAUTHBEARER, XOAUTH2: validate the bearer token for `user`. For OAUTHBEARER `user`
    /// is the GS2 authzid and may be empty (the token then names the user); the token is
    /// empty for a discovery request. On a bad token call [`SaslServer::token_rejected`]
    /// to send the error JSON (R7628-5, XOA2-2), or reject at once.
    CheckToken {
        /// The user (XOAUTH2 `user`, OAUTHBEARER authzid).
        user: &'a str,
        /// The bearer token.
        token: Secret<&'a [u8]>,
    },
    /// EXTERNAL: the identity is the TLS client certificate's. Reject when there is none,
    /// it maps to no user, or it may not act as a non-empty `authzid` (R4422-EXT-2).
    CheckExternal {
        /// Requested authorization identity (empty: the one the certificate maps to).
        authzid: &'a str,
    },
    /// SCRAM: the client proved the password and received the server signature.
    Success {
        /// Authorization identity (may be empty).
        authzid: &'a str,
        /// The authenticated user.
        user: &'a str,
    },
    /// The exchange failed: reject with `BadCredentials`.
    Failure,
}

/// Simple one-message mechanisms (PLAIN, EXTERNAL, CRAM-MD5's response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OneShot {
    Start,
    AwaitMessage,
    Done,
}

enum ServerState {
    Plain(OneShot),
    External(OneShot),
    CramMd5(OneShot),
    Login(login::Server),
    Scram(scram::Server),
    OAuth(oauth::Kind, oauth::Server),
}

/// The server half of one SASL exchange: create one per
/// [`AuthStart`](crate::ServerEvent::AuthStart), feed it the decoded client data, and turn
/// each [`ServerStep`] into a [`ServerConnection`](crate::ServerConnection) call. On `Err`
/// (malformed client data, wrong order) reject with `BadCredentials`.
///
/// The RFC 2195 exchange through a [`ServerConnection`](crate::ServerConnection):
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use pop3_proto::{Listing, ServerConnection, ServerEvent};
/// use pop3_proto::server::{LoginRejection, ServerConfig};
/// use pop3_proto::sasl::{cram_md5, Mechanism, SaslError, SaslServer, ServerStep};
///
/// /// Turns one step into the matching connection call.
/// fn answer(conn: &mut ServerConnection, step: Result<ServerStep<'_>, SaslError>) {
///     let ok = match step {
///         Ok(ServerStep::Challenge(data)) => return conn.auth_challenge(data).unwrap(),
///         Ok(ServerStep::CheckCramMd5 { user, challenge, digest }) => {
///             user == "tim" && cram_md5::verify(b"tanstaaftanstaaf", challenge, digest)
///         }
///         // CheckPassword, LookupScram, CheckToken, ... for the other mechanisms.
///         _ => false,
///     };
///     if ok {
///         conn.accept_login(Listing::new()).unwrap();
///     } else {
///         conn.reject_login(LoginRejection::BadCredentials).unwrap();
///     }
/// }
///
/// fn drive(conn: &mut ServerConnection, sasl: &mut Option<SaslServer>, wire: &mut Vec<u8>) {
///     while let Some(event) = conn.poll_event() {
///         match event {
///             ServerEvent::AuthStart { mechanism, initial_response } => {
///                 // Nonce: fresh random bytes from the adapter; hostname: this server's.
///                 let s = sasl.insert(SaslServer::new(
///                     mechanism,
///                     b"1896.697170952",
///                     "postoffice.reston.mci.net",
///                 ));
///                 let step = s.start(initial_response.map(|r| *r.expose()));
///                 answer(conn, step);
///             }
///             ServerEvent::AuthResponse { response } => {
///                 let step = match sasl.as_mut() {
///                     Some(s) => s.step(response.expose()),
///                     None => Err(SaslError::OutOfSequence),
///                 };
///                 answer(conn, step);
///             }
///             ServerEvent::AuthAborted => *sasl = None,
///             other => panic!("{other:?}"),
///         }
///     }
///     conn.poll_transmit(wire);
/// }
///
/// let mut config = ServerConfig::new();
/// config.sasl_mechanisms = vec![Mechanism::CramMd5];
/// let mut conn = ServerConnection::new(Arc::new(config), Duration::ZERO, None).unwrap();
/// let (mut sasl, mut wire) = (None, Vec::new());
/// drive(&mut conn, &mut sasl, &mut wire);
/// wire.clear();
///
/// conn.receive(Duration::ZERO, b"AUTH CRAM-MD5\r\n");
/// drive(&mut conn, &mut sasl, &mut wire);
/// assert_eq!(wire, b"+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n");
/// wire.clear();
///
/// conn.receive(Duration::ZERO, b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n");
/// drive(&mut conn, &mut sasl, &mut wire);
/// assert!(wire.starts_with(b"+OK "));
/// ```
pub struct SaslServer {
    mechanism: Mechanism,
    state: ServerState,
    ex: Exchange,
    nonce: Vec<u8>,
    hostname: String,
    port: Option<u16>,
    decoy_key: Option<Vec<u8>>,
    decoy_iterations: u32,
    started: bool,
}

impl fmt::Debug for SaslServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match &self.state {
            ServerState::Plain(p) | ServerState::External(p) | ServerState::CramMd5(p) => match p {
                OneShot::Start => "start",
                OneShot::AwaitMessage => "await-message",
                OneShot::Done => "done",
            },
            ServerState::Login(login::Server::AwaitUser) => "await-user",
            ServerState::Login(login::Server::AwaitPassword) => "await-password",
            ServerState::Login(login::Server::Done) => "done",
            ServerState::Scram(s) => s.phase_name(),
            ServerState::OAuth(_, s) => match s {
                oauth::Server::AwaitFirst => "await-message",
                oauth::Server::Checking => "checking",
                oauth::Server::AwaitErrorAck => "await-error-ack",
                oauth::Server::Done => "done",
            },
        };
        f.debug_struct("SaslServer")
            .field("mechanism", &self.mechanism)
            .field("phase", &phase)
            .field("user", &self.ex.user)
            .finish_non_exhaustive()
    }
}

impl SaslServer {
    /// A new exchange.
    ///
    /// `nonce`: fresh random bytes from the adapter, at least 16 (e.g. 18 random octets or
    /// 24 base64 characters). They become the CRAM-MD5 challenge's local part (R2195-1) and
    /// the SCRAM server nonce; bytes those cannot carry are base64-encoded first.
    /// `hostname`: this server's name, for the CRAM-MD5 msg-id `<nonce@hostname>` and the
    /// OAUTHBEARER `host` check (R7628-4; empty: not checked).
    pub fn new(mechanism: Mechanism, nonce: &[u8], hostname: &str) -> Self {
        let state = match mechanism {
            Mechanism::Plain => ServerState::Plain(OneShot::Start),
            Mechanism::Login => ServerState::Login(login::Server::AwaitUser),
            Mechanism::CramMd5 => ServerState::CramMd5(OneShot::Start),
            Mechanism::ScramSha1 => ServerState::Scram(scram::Server::new(
                ScramHash::Sha1,
                scram::server_nonce(nonce),
            )),
            Mechanism::ScramSha256 => ServerState::Scram(scram::Server::new(
                ScramHash::Sha256,
                scram::server_nonce(nonce),
            )),
            Mechanism::OAuthBearer => {
                ServerState::OAuth(oauth::Kind::OAuthBearer, oauth::Server::AwaitFirst)
            }
            Mechanism::XOAuth2 => {
                ServerState::OAuth(oauth::Kind::XOAuth2, oauth::Server::AwaitFirst)
            }
            Mechanism::External => ServerState::External(OneShot::Start),
        };
        Self {
            mechanism,
            state,
            ex: Exchange::default(),
            nonce: nonce.to_vec(),
            hostname: String::from(hostname),
            port: None,
            decoy_key: None,
            decoy_iterations: scram::MIN_ITERATIONS,
            started: false,
        }
    }

    /// OAUTHBEARER: the port this listener serves, checked against a `port` the client
    /// sends (R7628-4). Without it `port` is not checked.
    #[must_use]
    pub const fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// SCRAM: the server-wide secret and the iteration count for unknown users.
    ///
    /// For a user the application does not know ([`scram_credentials(None)`](
    /// Self::scram_credentials)) the exchange goes on with a decoy salt derived from this
    /// key and the user name, and fails only after the client's proof, so an attacker
    /// cannot tell unknown from known users. Use random bytes fixed for the server's life
    /// (the same key on every connection gives the same salt for the same name) and the
    /// iteration count real users have. Without it the nonce is the key, so the decoy
    /// salt changes from one connection to the next.
    #[must_use]
    pub fn with_unknown_user_key(mut self, key: &[u8], iterations: u32) -> Self {
        self.decoy_key = Some(key.to_vec());
        self.decoy_iterations = iterations.max(1);
        self
    }

    /// The mechanism.
    pub const fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The first step, with the client's first message (the decoded initial response, or
    /// the answer to the empty challenge the connection sent), or `None` when there is
    /// none: then server-first mechanisms (CRAM-MD5, LOGIN) send their first challenge and
    /// client-first ones ask with an empty challenge.
    ///
    /// Called once, first; a second call is [`SaslError::OutOfSequence`].
    pub fn start(&mut self, initial: Option<&[u8]>) -> Result<ServerStep<'_>, SaslError> {
        let next = if self.started {
            Err(SaslError::OutOfSequence)
        } else {
            self.started = true;
            self.start_inner(initial)
        };
        self.view(next)
    }

    fn start_inner(&mut self, initial: Option<&[u8]>) -> Result<Next, SaslError> {
        let ex = &mut self.ex;
        match &mut self.state {
            ServerState::Plain(p) | ServerState::External(p) if *p == OneShot::Start => {
                match initial {
                    None => {
                        *p = OneShot::AwaitMessage;
                        ex.challenge.clear();
                        Ok(Next::Challenge)
                    }
                    Some(m) => {
                        *p = OneShot::Done;
                        if self.mechanism == Mechanism::Plain {
                            plain::server_message(m, ex)
                        } else {
                            external::server_message(m, ex)
                        }
                    }
                }
            }
            ServerState::CramMd5(p) if *p == OneShot::Start => {
                *p = OneShot::Done;
                // R5034-AUTH-9: no initial response for a server-first mechanism.
                if initial.is_some() {
                    return Err(SaslError::MalformedResponse);
                }
                if self.nonce.is_empty() {
                    return Err(SaslError::InvalidNonce);
                }
                cram_md5::challenge(&self.nonce, &self.hostname, &mut ex.challenge);
                *p = OneShot::AwaitMessage;
                Ok(Next::Challenge)
            }
            ServerState::Login(l) if *l == login::Server::AwaitUser => l.start(initial, ex),
            ServerState::Scram(s) => {
                if self.nonce.is_empty() {
                    return Err(SaslError::InvalidNonce);
                }
                s.start(initial, ex)
            }
            ServerState::OAuth(_, s) if *s == oauth::Server::AwaitFirst => match initial {
                None => {
                    ex.challenge.clear();
                    Ok(Next::Challenge)
                }
                Some(m) => self.step_inner(m),
            },
            _ => Err(SaslError::OutOfSequence),
        }
    }

    /// The next step, with a decoded client line (the answer to the last challenge).
    pub fn step(&mut self, response: &[u8]) -> Result<ServerStep<'_>, SaslError> {
        let next = if self.started {
            self.step_inner(response)
        } else {
            Err(SaslError::OutOfSequence)
        };
        self.view(next)
    }

    fn step_inner(&mut self, response: &[u8]) -> Result<Next, SaslError> {
        let ex = &mut self.ex;
        match &mut self.state {
            ServerState::Plain(p) if *p == OneShot::AwaitMessage => {
                *p = OneShot::Done;
                plain::server_message(response, ex)
            }
            ServerState::External(p) if *p == OneShot::AwaitMessage => {
                *p = OneShot::Done;
                external::server_message(response, ex)
            }
            ServerState::CramMd5(p) if *p == OneShot::AwaitMessage => {
                *p = OneShot::Done;
                cram_md5::server_response(response, ex)
            }
            ServerState::Login(l) => l.step(response, ex),
            ServerState::Scram(s) => s.step(response, ex),
            ServerState::OAuth(kind, s) => {
                let expect = oauth::Expect {
                    host: &self.hostname,
                    port: self.port,
                };
                s.step(*kind, response, &expect, ex)
            }
            _ => Err(SaslError::OutOfSequence),
        }
    }

    /// SCRAM: the answer to [`ServerStep::LookupScram`]. `None` for an unknown user: the
    /// exchange goes on with decoy credentials and ends in [`ServerStep::Failure`], so the
    /// user cannot be probed (see [`with_unknown_user_key`](Self::with_unknown_user_key)).
    ///
    /// Errors: [`SaslError::InvalidCredentials`] for unusable credentials (zero iterations,
    /// empty salt, keys of the wrong length), [`SaslError::OutOfSequence`] when no lookup
    /// is pending.
    pub fn scram_credentials(
        &mut self,
        creds: Option<ScramCredentials>,
    ) -> Result<ServerStep<'_>, SaslError> {
        let next = match &mut self.state {
            ServerState::Scram(s) => {
                let key = self.decoy_key.as_deref().unwrap_or(&self.nonce);
                let decoy = scram::Decoy {
                    key,
                    iterations: self.decoy_iterations,
                };
                s.credentials(creds, &decoy, &mut self.ex)
            }
            _ => Err(SaslError::OutOfSequence),
        };
        self.view(next)
    }

    /// OAUTHBEARER, XOAUTH2: the token of [`ServerStep::CheckToken`] is bad. Returns the
    /// challenge carrying `error_json` (e.g. `{"status":"invalid_token"}`, RFC 7628 §3.2.2);
    /// the client's dummy answer then gives [`ServerStep::Failure`] (R7628-5, XOA2-2).
    pub fn token_rejected(&mut self, error_json: &[u8]) -> Result<ServerStep<'_>, SaslError> {
        let next = match &mut self.state {
            ServerState::OAuth(_, s) => s.token_rejected(error_json, &mut self.ex),
            _ => Err(SaslError::OutOfSequence),
        };
        self.view(next)
    }

    fn view(&self, next: Result<Next, SaslError>) -> Result<ServerStep<'_>, SaslError> {
        let ex = &self.ex;
        Ok(match next? {
            Next::Challenge => ServerStep::Challenge(&ex.challenge),
            Next::CheckPassword => ServerStep::CheckPassword {
                authzid: &ex.authzid,
                user: &ex.user,
                password: Secret::new(&ex.secret),
            },
            Next::CheckCramMd5 => ServerStep::CheckCramMd5 {
                user: &ex.user,
                challenge: &ex.challenge,
                digest: &ex.secret,
            },
            Next::LookupScram => ServerStep::LookupScram {
                authzid: &ex.authzid,
                user: &ex.user,
            },
            Next::CheckToken => ServerStep::CheckToken {
                user: &ex.user,
                token: Secret::new(&ex.secret),
            },
            Next::CheckExternal => ServerStep::CheckExternal {
                authzid: &ex.authzid,
            },
            Next::Success => ServerStep::Success {
                authzid: &ex.authzid,
                user: &ex.user,
            },
            Next::Failure => ServerStep::Failure,
        })
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;

    #[test]
    fn strict_base64_r5034_auth_12() {
        let mut out = Vec::new();
        for bad in [
            &b"=AAA"[..],
            b"AAA=BBB",
            b"AHRp bQ==",
            b"AHRpbQ==\t",
            b"!!!!",
            b"AHRpbQ",
        ] {
            assert_eq!(
                decode_client_line(bad, &mut out),
                Err(SaslError::InvalidBase64),
                "{bad:?}"
            );
        }
        assert_eq!(
            decode_client_line(b"AHRpbQ==", &mut out),
            Ok(ClientLine::Data)
        );
        assert_eq!(out, b"\0tim");
    }

    #[test]
    fn empty_cancel_and_equals() {
        let mut out = alloc::vec![1];
        assert_eq!(decode_client_line(b"", &mut out), Ok(ClientLine::Data));
        assert!(out.is_empty());
        assert_eq!(decode_client_line(b"*", &mut out), Ok(ClientLine::Cancel));
        assert_eq!(decode_initial_response(b"=", &mut out), Ok(()));
        assert!(out.is_empty());
        assert!(decode_initial_response(b"", &mut out).is_err());
    }

    #[test]
    fn challenge_encoding() {
        let mut out = Vec::new();
        encode_challenge(b"", &mut out);
        assert_eq!(out, b"+ \r\n");
        out.clear();
        encode_challenge(b"<1896.697170952@postoffice.reston.mci.net>", &mut out);
        assert_eq!(
            out,
            b"+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"
        );
    }

    #[test]
    fn names_are_case_insensitive() {
        assert_eq!(
            Mechanism::from_name("scram-sha-256"),
            Some(Mechanism::ScramSha256)
        );
        assert_eq!(Mechanism::from_name("FOOBAR"), None);
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
        }
    }

    // ---- mechanisms: client against server ---------------------------------------------

    use alloc::{borrow::ToOwned, format, string::ToString, vec};

    /// A step with its data copied out, so the loop below can hold it across calls.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Owned {
        Challenge(Vec<u8>),
        CheckPassword(String, String, Vec<u8>),
        CheckCramMd5(String, Vec<u8>, Vec<u8>),
        LookupScram(String, String),
        CheckToken(String, Vec<u8>),
        CheckExternal(String),
        Success(String, String),
        Failure,
        Err(SaslError),
    }

    fn own(step: Result<ServerStep<'_>, SaslError>) -> Owned {
        match step {
            Ok(ServerStep::Challenge(d)) => Owned::Challenge(d.to_vec()),
            Ok(ServerStep::CheckPassword {
                authzid,
                user,
                password,
            }) => Owned::CheckPassword(authzid.into(), user.into(), password.expose().to_vec()),
            Ok(ServerStep::CheckCramMd5 {
                user,
                challenge,
                digest,
            }) => Owned::CheckCramMd5(user.into(), challenge.to_vec(), digest.to_vec()),
            Ok(ServerStep::LookupScram { authzid, user }) => {
                Owned::LookupScram(authzid.into(), user.into())
            }
            Ok(ServerStep::CheckToken { user, token }) => {
                Owned::CheckToken(user.into(), token.expose().to_vec())
            }
            Ok(ServerStep::CheckExternal { authzid }) => Owned::CheckExternal(authzid.into()),
            Ok(ServerStep::Success { authzid, user }) => {
                Owned::Success(authzid.into(), user.into())
            }
            Ok(ServerStep::Failure) => Owned::Failure,
            Err(e) => Owned::Err(e),
        }
    }

    /// What the application knows: one user.
    struct App {
        user: &'static str,
        password: &'static str,
        token: &'static str,
        /// The identity the TLS client certificate maps to.
        cert_user: &'static str,
    }

    const APP: App = App {
        user: "alice",
        password: "secret",
        token: "good-token",
        cert_user: "alice",
    };

    #[derive(Debug, PartialEq, Eq)]
    enum Outcome {
        /// The server accepted; the client's `finish`.
        Accepted(Result<(), SaslError>),
        /// The server rejected.
        Rejected,
        /// The client cancelled with `*`.
        Cancelled(SaslError),
    }

    /// Runs one exchange. `inline`: send the initial response on the AUTH line.
    /// `tamper` may change each challenge before the client sees it.
    fn run(
        client: &mut SaslClient,
        server: &mut SaslServer,
        app: &App,
        inline: bool,
        tamper: &dyn Fn(&mut Vec<u8>),
    ) -> Outcome {
        let ir = if inline {
            client.initial_response()
        } else {
            None
        };
        let mut step = own(server.start(ir.as_deref()));
        for _ in 0..10 {
            step = match step {
                Owned::Challenge(mut data) => {
                    tamper(&mut data);
                    match client.respond(&data) {
                        Ok(answer) => own(server.step(&answer)),
                        Err(e) => return Outcome::Cancelled(e),
                    }
                }
                Owned::CheckPassword(authzid, user, password) => {
                    let ok = user == app.user
                        && password == app.password.as_bytes()
                        && (authzid.is_empty() || authzid == user);
                    return verdict(client, ok);
                }
                Owned::CheckCramMd5(user, challenge, digest) => {
                    let ok = user == app.user
                        && cram_md5::verify(app.password.as_bytes(), &challenge, &digest);
                    return verdict(client, ok);
                }
                Owned::LookupScram(_, user) => {
                    let creds = (user == app.user).then(|| {
                        let hash = ScramHash::from_mechanism(server.mechanism()).unwrap();
                        ScramCredentials::derive(hash, app.password, b"0123456789abcdef", 4096)
                            .unwrap()
                    });
                    own(server.scram_credentials(creds))
                }
                Owned::CheckToken(user, token) => {
                    if token == app.token.as_bytes() && (user.is_empty() || user == app.user) {
                        return verdict(client, true);
                    }
                    own(server.token_rejected(br#"{"status":"invalid_token"}"#))
                }
                Owned::CheckExternal(authzid) => {
                    return verdict(client, authzid.is_empty() || authzid == app.cert_user);
                }
                Owned::Success(authzid, user) => {
                    return verdict(client, authzid.is_empty() || authzid == user);
                }
                Owned::Failure | Owned::Err(_) => return Outcome::Rejected,
            };
        }
        panic!("exchange did not end: {step:?}");
    }

    fn verdict(client: &SaslClient, ok: bool) -> Outcome {
        if ok {
            Outcome::Accepted(client.finish())
        } else {
            Outcome::Rejected
        }
    }

    fn no_tamper(_: &mut Vec<u8>) {}

    const NONCE: &[u8] = b"srv-nonce-0123456789";

    fn server(m: Mechanism) -> SaslServer {
        SaslServer::new(m, NONCE, "pop.example.net").with_port(995)
    }

    /// Every mechanism's client, with `password` (or token) filled in.
    fn clients(user: &str, password: &str, token: &str) -> Vec<SaslClient> {
        vec![
            SaslClient::plain("", user, password),
            SaslClient::login(user, password),
            SaslClient::cram_md5(user, password),
            SaslClient::scram_sha1(user, password, b"cnonce-abc").unwrap(),
            SaslClient::scram_sha256(user, password, b"cnonce-abc").unwrap(),
            SaslClient::xoauth2(user, token),
            SaslClient::oauthbearer(Some(user), token, Some("pop.example.net"), Some(995)),
        ]
    }

    #[test]
    fn every_mechanism_succeeds_inline_and_after_empty_challenge() {
        for inline in [true, false] {
            for mut c in clients("alice", "secret", "good-token") {
                let m = c.mechanism();
                let out = run(&mut c, &mut server(m), &APP, inline, &no_tamper);
                assert_eq!(out, Outcome::Accepted(Ok(())), "{m} inline={inline}");
            }
            let mut c = SaslClient::external("");
            let out = run(
                &mut c,
                &mut server(Mechanism::External),
                &APP,
                inline,
                &no_tamper,
            );
            assert_eq!(out, Outcome::Accepted(Ok(())), "EXTERNAL inline={inline}");
        }
    }

    #[test]
    fn every_mechanism_fails_with_wrong_secret() {
        for mut c in clients("alice", "wrong", "bad-token") {
            let m = c.mechanism();
            let out = run(&mut c, &mut server(m), &APP, true, &no_tamper);
            assert_eq!(out, Outcome::Rejected, "{m}");
            if matches!(m, Mechanism::OAuthBearer | Mechanism::XOAuth2) {
                // The error JSON was answered and kept (R7628-5, XOA2-2).
                assert_eq!(c.oauth_error(), Some(&br#"{"status":"invalid_token"}"#[..]));
                assert_eq!(c.finish(), Err(SaslError::ServerError));
            }
            if matches!(m, Mechanism::ScramSha1 | Mechanism::ScramSha256) {
                assert_eq!(c.finish(), Err(SaslError::MissingServerFinal));
            }
        }
        // Unknown users fail the same way.
        for mut c in clients("mallory", "secret", "good-token") {
            let m = c.mechanism();
            let out = run(&mut c, &mut server(m), &APP, true, &no_tamper);
            assert_eq!(out, Outcome::Rejected, "{m}");
        }
        // EXTERNAL asking for another identity (R4422-EXT-2).
        let mut c = SaslClient::external("bob");
        let out = run(
            &mut c,
            &mut server(Mechanism::External),
            &APP,
            true,
            &no_tamper,
        );
        assert_eq!(out, Outcome::Rejected);
        // PLAIN with an authzid the user may not act as (R4616-4).
        let mut c = SaslClient::plain("bob", "alice", "secret");
        let out = run(
            &mut c,
            &mut server(Mechanism::Plain),
            &APP,
            true,
            &no_tamper,
        );
        assert_eq!(out, Outcome::Rejected);
    }

    #[test]
    fn wrong_server_signature_fails_the_client_r5802_7() {
        for m in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
            let mut c = SaslClient::scram(
                ScramHash::from_mechanism(m).unwrap(),
                "alice",
                "secret",
                b"cn",
            )
            .unwrap();
            // Flip one bit of the decoded signature in `v=...`.
            let tamper = |d: &mut Vec<u8>| {
                if let Some(b64) = d.strip_prefix(b"v=") {
                    let mut sig = Vec::new();
                    decode_base64(b64, &mut sig).unwrap();
                    sig[0] ^= 1;
                    d.truncate(2);
                    encode_base64(&sig, d);
                }
            };
            let out = run(&mut c, &mut server(m), &APP, true, &tamper);
            assert_eq!(
                out,
                Outcome::Cancelled(SaslError::ServerSignatureMismatch),
                "{m}"
            );
            assert!(c.finish().is_err());
        }
    }

    #[test]
    fn server_accepting_without_server_final_fails_the_client() {
        let mut c = SaslClient::scram_sha256("alice", "secret", b"cn").unwrap();
        let mut s = server(Mechanism::ScramSha256);
        let first = c.initial_response().unwrap();
        assert!(matches!(
            s.start(Some(&first)),
            Ok(ServerStep::LookupScram { .. })
        ));
        // A rogue server says +OK now.
        assert_eq!(c.finish(), Err(SaslError::MissingServerFinal));
    }

    #[test]
    fn login_challenges_and_user_as_initial_response_rlogin_1_6() {
        let mut s = server(Mechanism::Login);
        assert_eq!(own(s.start(None)), Owned::Challenge(b"Username:".to_vec()));
        assert_eq!(own(s.step(b"tim")), Owned::Challenge(b"Password:".to_vec()));
        assert_eq!(
            own(s.step(b"tanstaaf\x01\xfftanstaaf")),
            Owned::CheckPassword(
                String::new(),
                "tim".into(),
                b"tanstaaf\x01\xfftanstaaf".to_vec()
            )
        );
        assert_eq!(own(s.step(b"x")), Owned::Err(SaslError::OutOfSequence));
        let mut s = server(Mechanism::Login);
        assert_eq!(
            own(s.start(Some(b"tim"))),
            Owned::Challenge(b"Password:".to_vec())
        );
        // The client ignores the challenge text, even the draft's `User Name\0` (RLOGIN-2).
        let mut c = SaslClient::login("tim", "pw");
        assert_eq!(c.initial_response(), None);
        assert_eq!(c.finish(), Err(SaslError::Incomplete));
        assert_eq!(c.respond(b"User Name\0").unwrap(), b"tim");
        assert_eq!(c.respond(b"foo").unwrap(), b"pw");
        assert_eq!(c.finish(), Ok(()));
        assert!(c.respond(b"more").is_err());
        // Empty user or password, or NUL inside: refused.
        let mut s = server(Mechanism::Login);
        let _ = s.start(None);
        assert_eq!(own(s.step(b"")), Owned::Err(SaslError::EmptyString));
        let mut s = server(Mechanism::Login);
        let _ = s.start(Some(b"tim"));
        assert_eq!(
            own(s.step(b"a\0b")),
            Owned::Err(SaslError::MalformedResponse)
        );
    }

    #[test]
    fn cram_md5_server_rfc2195() {
        let mut s = SaslServer::new(
            Mechanism::CramMd5,
            b"1896.697170952",
            "postoffice.reston.mci.net",
        );
        assert_eq!(
            own(s.start(None)),
            Owned::Challenge(b"<1896.697170952@postoffice.reston.mci.net>".to_vec())
        );
        let step = own(s.step(b"tim b913a602c7eda7a495b4e6e7334d3890"));
        let Owned::CheckCramMd5(user, challenge, digest) = step else {
            panic!("{step:?}");
        };
        assert_eq!(user, "tim");
        assert!(cram_md5::verify(b"tanstaaftanstaaf", &challenge, &digest));
        assert!(!cram_md5::verify(b"tanstaaftanstaaX", &challenge, &digest));
        // The client side of the same vector.
        let mut c = SaslClient::cram_md5("tim", "tanstaaftanstaaf");
        assert_eq!(c.initial_response(), None);
        assert_eq!(
            c.respond(&challenge).unwrap(),
            b"tim b913a602c7eda7a495b4e6e7334d3890"
        );
        // An initial response, an empty nonce: refused.
        let mut s = server(Mechanism::CramMd5);
        assert_eq!(
            own(s.start(Some(b"x"))),
            Owned::Err(SaslError::MalformedResponse)
        );
        let mut s = SaslServer::new(Mechanism::CramMd5, b"", "h");
        assert_eq!(own(s.start(None)), Owned::Err(SaslError::InvalidNonce));
    }

    #[test]
    fn cram_md5_challenges_are_fresh_per_nonce_r2195_1() {
        let mut seen = Vec::new();
        for i in 0..100u32 {
            let nonce = format!("{i}.{}", 697_170_952 + i);
            let mut s = SaslServer::new(Mechanism::CramMd5, nonce.as_bytes(), "pop.example.net");
            let Owned::Challenge(c) = own(s.start(None)) else {
                panic!()
            };
            assert!(crate::apop::is_valid_timestamp(&c));
            assert!(!seen.contains(&c));
            seen.push(c);
        }
    }

    #[test]
    fn start_once_and_first() {
        for m in Mechanism::ALL {
            let mut s = server(m);
            assert_eq!(
                own(s.step(b"x")),
                Owned::Err(SaslError::OutOfSequence),
                "{m}"
            );
            let _ = s.start(None);
            assert_eq!(
                own(s.start(None)),
                Owned::Err(SaslError::OutOfSequence),
                "{m}"
            );
        }
    }

    #[test]
    fn plain_server_cases() {
        let mut s = server(Mechanism::Plain);
        assert_eq!(own(s.start(None)), Owned::Challenge(Vec::new()));
        assert_eq!(
            own(s.step(b"\0tim\0tanstaaftanstaaf")),
            Owned::CheckPassword(String::new(), "tim".into(), b"tanstaaftanstaaf".to_vec())
        );
        assert_eq!(
            own(s.step(b"\0tim\0x")),
            Owned::Err(SaslError::OutOfSequence)
        );
        let mut s = server(Mechanism::Plain);
        assert_eq!(
            own(s.start(Some(b"a\0b\0c\0d"))),
            Owned::Err(SaslError::MalformedResponse)
        );
    }

    #[test]
    fn external_server_cases_r4422_ext_1() {
        let mut s = server(Mechanism::External);
        assert_eq!(own(s.start(Some(b""))), Owned::CheckExternal(String::new()));
        let mut s = server(Mechanism::External);
        assert_eq!(own(s.start(None)), Owned::Challenge(Vec::new()));
        assert_eq!(own(s.step(b"alice")), Owned::CheckExternal("alice".into()));
        assert_eq!(own(s.step(b"")), Owned::Err(SaslError::OutOfSequence));
        let mut c = SaslClient::external("");
        assert_eq!(c.initial_response(), Some(Vec::new()));
    }

    #[test]
    fn oauthbearer_host_check_r7628_4() {
        let mut c = SaslClient::oauthbearer(None, "good-token", Some("evil.example"), None);
        let ir = c.initial_response().unwrap();
        let mut s = server(Mechanism::OAuthBearer);
        assert_eq!(own(s.start(Some(&ir))), Owned::Err(SaslError::HostMismatch));
        let mut c = SaslClient::oauthbearer(None, "good-token", Some("POP.example.net"), Some(110));
        let ir = c.initial_response().unwrap();
        let mut s = server(Mechanism::OAuthBearer);
        assert_eq!(own(s.start(Some(&ir))), Owned::Err(SaslError::HostMismatch));
        // Without a configured hostname or port nothing is checked.
        let mut s = SaslServer::new(Mechanism::OAuthBearer, NONCE, "");
        assert_eq!(
            own(s.start(Some(&ir))),
            Owned::CheckToken(String::new(), b"good-token".to_vec())
        );
        // A single %x01 first: fail (R7628-6).
        let mut s = server(Mechanism::OAuthBearer);
        assert_eq!(own(s.start(Some(b"\x01"))), Owned::Failure);
    }

    #[test]
    fn scram_server_vector_with_authzid_and_out_of_sequence() {
        let mut s = server(Mechanism::ScramSha256);
        assert_eq!(
            own(s.scram_credentials(None)),
            Owned::Err(SaslError::OutOfSequence)
        );
        assert_eq!(
            own(s.token_rejected(b"{}")),
            Owned::Err(SaslError::OutOfSequence)
        );
        assert_eq!(own(s.start(None)), Owned::Challenge(Vec::new()));
        assert_eq!(
            own(s.step(b"y,a=bob,n=alice,r=xyz")),
            Owned::LookupScram("bob".into(), "alice".into())
        );
        assert_eq!(own(s.step(b"c=eSws")), Owned::Err(SaslError::OutOfSequence));
        // Bad credentials from the application.
        let bad = ScramCredentials {
            salt: vec![1],
            iterations: 4096,
            stored_key: vec![0; 20],
            server_key: vec![0; 32],
        };
        assert_eq!(
            own(s.scram_credentials(Some(bad))),
            Owned::Err(SaslError::InvalidCredentials)
        );
        assert_eq!(own(s.start(None)), Owned::Err(SaslError::OutOfSequence));
        // An empty nonce from the adapter is refused.
        let mut s = SaslServer::new(Mechanism::ScramSha1, b"", "h");
        assert_eq!(
            own(s.start(Some(b"n,,n=a,r=b"))),
            Owned::Err(SaslError::InvalidNonce)
        );
        // Non-printable nonce bytes are base64-encoded into the server nonce.
        let mut s = SaslServer::new(Mechanism::ScramSha1, &[0, 0xff, b','], "h");
        let _ = s.start(Some(b"n,,n=a,r=b"));
        let Owned::Challenge(first) = own(s.scram_credentials(None)) else {
            panic!()
        };
        assert!(
            first.starts_with(b"r=bAP8s,s="),
            "{:?}",
            first.escape_ascii()
        );
    }

    #[test]
    fn unknown_user_key_gives_stable_decoys() {
        let first = |nonce: &[u8]| {
            let mut s = SaslServer::new(Mechanism::ScramSha256, nonce, "h")
                .with_unknown_user_key(b"k", 10_000);
            let _ = s.start(Some(b"n,,n=ghost,r=c"));
            let Owned::Challenge(f) = own(s.scram_credentials(None)) else {
                panic!()
            };
            let salt_at = f.windows(2).position(|w| w == b"s=").unwrap();
            f[salt_at..].to_vec()
        };
        assert_eq!(first(b"n1"), first(b"n2"));
        assert!(first(b"n1").ends_with(b",i=10000"));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut all = clients("alice", "hunter2-secret", "hunter2-token");
        all.push(SaslClient::external("alice"));
        for c in &mut all {
            let m = c.mechanism();
            let mut s = server(m);
            let ir = c.initial_response();
            let step = format!("{:?}", s.start(ir.as_deref()));
            let text = format!("{c:?} {s:?} {step}");
            assert!(!text.contains("hunter2"), "{m}: {text}");
        }
        let mut s = server(Mechanism::Plain);
        let text = format!("{:?}", s.start(Some(b"\0alice\0hunter2")));
        assert!(
            text.contains("alice") && !text.contains("hunter2"),
            "{text}"
        );
    }

    #[test]
    fn error_display() {
        assert_eq!(
            SaslError::ServerSignatureMismatch.to_string(),
            "server signature mismatch"
        );
        assert_eq!(
            SaslError::InvalidBase64.to_owned(),
            SaslError::InvalidBase64
        );
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        /// Well-formed SHA-1 credentials without the cost of deriving them.
        fn cheap_creds() -> ScramCredentials {
            ScramCredentials {
                salt: vec![7; 16],
                iterations: 1,
                stored_key: vec![1; 20],
                server_key: vec![2; 20],
            }
        }

        fn mechanisms() -> impl Strategy<Value = Mechanism> {
            proptest::sample::select(Mechanism::ALL.to_vec())
        }

        proptest! {
            #[test]
            fn server_never_panics(
                m in mechanisms(),
                first in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80)),
                steps in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..4),
                with_creds in any::<bool>(),
            ) {
                let mut s = SaslServer::new(m, b"nonce", "host");
                let _ = own(s.start(first.as_deref()));
                for step in &steps {
                    let _ = own(s.scram_credentials(with_creds.then(cheap_creds)));
                    let _ = own(s.token_rejected(step));
                    let _ = own(s.step(step));
                }
            }

            #[test]
            fn scram_server_never_panics_on_client_final(
                tail in proptest::collection::vec(any::<u8>(), 0..120),
                prefix in proptest::sample::select(vec![&b""[..], b"c=biws,r=cnSRV", b"c=biws,r=cnSRV,p=", b"c=", b",p="]),
            ) {
                let mut s = SaslServer::new(Mechanism::ScramSha1, b"SRV", "host");
                let _ = s.start(Some(b"n,,n=u,r=cn"));
                let _ = s.scram_credentials(Some(cheap_creds()));
                let msg = [prefix, &tail].concat();
                let out = own(s.step(&msg));
                prop_assert!(!matches!(out, Owned::Challenge(_) | Owned::Success(..)));
            }

            #[test]
            fn client_never_panics(
                challenges in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..4),
                scram_prefix in any::<bool>(),
            ) {
                let mut all = clients("u", "p", "t");
                all.push(SaslClient::external(""));
                for mut c in all {
                    let _ = c.initial_response();
                    for ch in &challenges {
                        let mut ch = ch.clone();
                        if scram_prefix {
                            // Reach the SCRAM parser past the nonce check.
                            let mut v = b"r=cnonce-abcX,s=AAAA,i=1,".to_vec();
                            v.extend_from_slice(&ch);
                            ch = v;
                        }
                        let _ = c.respond(&ch);
                    }
                    let _ = c.finish();
                }
            }
        }
    }
}
