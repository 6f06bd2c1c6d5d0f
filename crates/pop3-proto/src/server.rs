//! The server side: [`ServerConnection`], a POP3 session as a pure state machine.
//!
//! The machine owns the session state (AUTHORIZATION → TRANSACTION → UPDATE, RFC 1939 §3)
//! and answers everything it can from what it knows: CAPA, NOOP, STAT, LIST, UIDL, DELE,
//! RSET, LANG, UTF8, wrong-state and syntax errors. It asks the application, through
//! [`ServerEvent`]s, only for what it cannot know, and waits for the answer before it reads
//! the next command (pipelined commands are answered strictly in order, RFC 2449 §6.6):
//!
//! | event | the application answers with |
//! |---|---|
//! | [`CheckPassword`](ServerEvent::CheckPassword), [`CheckApop`](ServerEvent::CheckApop) | [`accept_login`](ServerConnection::accept_login) or [`reject_login`](ServerConnection::reject_login) |
//! | [`AuthStart`](ServerEvent::AuthStart), [`AuthResponse`](ServerEvent::AuthResponse) | [`auth_challenge`](ServerConnection::auth_challenge), `accept_login` or `reject_login` |
//! | [`RetrieveMessage`](ServerEvent::RetrieveMessage) | [`body_chunk`](ServerConnection::body_chunk)… then [`body_end`](ServerConnection::body_end); or [`message_unavailable`](ServerConnection::message_unavailable) |
//! | [`Commit`](ServerEvent::Commit) | [`commit_done`](ServerConnection::commit_done) |
//! | [`StartTls`](ServerEvent::StartTls) | the TLS handshake, then [`tls_established`](ServerConnection::tls_established) |
//!
//! The maildrop is never changed here: the machine only keeps the deletion marks, and hands
//! them over in [`ServerEvent::Commit`] after a QUIT in TRANSACTION. A connection that ends in
//! any other way (EOF, autologout, too many failures) never produces `Commit` (R1939-UPD-2).

use alloc::{string::String, sync::Arc, vec::Vec};
use core::{fmt, mem, ops::Range, time::Duration};

use crate::{
    Command, CommandError, Listing, Secret,
    dot::{DotStuffer, Progress},
    fmt::push_u64,
    line::{Line, LineLimit, LineReader},
    response::{Capability, Expire, ResponseCode, Status},
    sasl::{self, ClientLine, FirstMessage, Mechanism},
};

/// The smallest autologout RFC 1939 §3 permits; shorter configured values are raised to it.
pub const MIN_AUTOLOGOUT: Duration = Duration::from_secs(600);

/// How listings are paced: `LIST`/`UIDL` of a large maildrop are produced this many bytes at
/// a time as the adapter drains output, so 100,000 messages never sit in memory as text.
const LISTING_CHUNK: usize = 16 * 1024;

/// How a listener carries TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TlsMode {
    /// Plaintext only: no STLS.
    #[default]
    None,
    /// Plaintext, with STLS offered (RFC 2595).
    Stls,
    /// TLS from the first byte (RFC 8314, port 995).
    Implicit,
}

/// Settings shared by the connections of one listener. Build it once, share it in an
/// [`Arc`].
///
/// ```
/// use pop3_proto::server::{ServerConfig, TlsMode};
/// let mut config = ServerConfig::new();
/// config.tls = TlsMode::Stls;
/// config.implementation = Some("example".into());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Greeting text after `+OK ` (default `POP3 server ready`). Kept short: the greeting
    /// line, timestamp included, must stay within 512 octets (RFC 2449 §4); longer texts are
    /// cut at 400 octets.
    pub greeting: String,
    /// Longest command line accepted, CRLF included (default 255, RFC 2449 §4).
    pub command_line_limit: usize,
    /// Longest SASL line accepted: `AUTH` with an initial response and continuation lines
    /// (default 16 KiB; OAuth tokens exceed 255 octets, R5034-AUTH-13, XOA2-4). Also bounds
    /// how much pipelined input is buffered before [`ServerConnection::wants_read`] says stop.
    pub sasl_line_limit: usize,
    /// Idle time after which the session is closed without UPDATE (default and minimum
    /// 10 minutes, RFC 1939 §3).
    pub autologout: Duration,
    /// How this listener carries TLS (default [`TlsMode::None`]).
    pub tls: TlsMode,
    /// Offer and accept USER/PASS, PLAIN, LOGIN and bearer tokens without TLS (default
    /// `false`, RFC 5034 §4, RFC 8314 §4.1; a daemon may set it for loopback listeners).
    pub allow_plaintext_without_tls: bool,
    /// Offer USER/PASS at all (default `true`).
    pub user_pass: bool,
    /// SASL mechanisms the application can verify, in the order CAPA lists them (default
    /// PLAIN, LOGIN). Those that send a reusable secret are hidden without TLS unless
    /// plaintext is allowed; EXTERNAL needs TLS.
    pub sasl_mechanisms: Vec<Mechanism>,
    /// Credential failures after which the connection is closed (default 3).
    pub max_auth_failures: u32,
    /// `LOGIN-DELAY` seconds to announce in CAPA (default none). Enforcing it is the
    /// application's job ([`LoginRejection::LoginDelay`]).
    pub login_delay: Option<u32>,
    /// `EXPIRE` policy to announce in CAPA (default none).
    pub expire: Option<Expire>,
    /// `IMPLEMENTATION` text (default none).
    pub implementation: Option<String>,
    /// Announce `IMPLEMENTATION` before login too (default `false`: after login only, for
    /// privacy, RFC 2449 §6.9).
    pub implementation_before_login: bool,
    /// Stop reading commands while this many response bytes wait for the adapter (default
    /// 64 KiB): a client that pipelines without reading cannot grow our buffers.
    pub output_high_water: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            greeting: String::from("POP3 server ready"),
            command_line_limit: 255,
            sasl_line_limit: 16 * 1024,
            autologout: MIN_AUTOLOGOUT,
            tls: TlsMode::None,
            allow_plaintext_without_tls: false,
            user_pass: true,
            sasl_mechanisms: alloc::vec![Mechanism::Plain, Mechanism::Login],
            max_auth_failures: 3,
            login_delay: None,
            expire: None,
            implementation: None,
            implementation_before_login: false,
            output_high_water: 64 * 1024,
        }
    }
}

impl ServerConfig {
    /// The defaults documented on each field.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The session state of RFC 1939 §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Before a successful login.
    Authorization,
    /// Logged in; the maildrop is open.
    Transaction,
    /// QUIT received in TRANSACTION; the commit is in progress.
    Update,
    /// The connection is over.
    Closed,
}

/// Why the connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// QUIT (after the commit, if any).
    Quit,
    /// The client closed its side and every command it sent was answered.
    PeerClosed,
    /// The autologout timer expired; nothing was committed.
    Autologout,
    /// Too many failed logins.
    TooManyAuthFailures,
    /// The application aborted a message in the middle ([`ServerConnection::body_abort`]).
    BodyAborted,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Quit => "quit",
            Self::PeerClosed => "peer closed",
            Self::Autologout => "autologout",
            Self::TooManyAuthFailures => "too many authentication failures",
            Self::BodyAborted => "message transfer aborted",
        })
    }
}

/// A decision the server machine needs from the application.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerEvent<'a> {
    /// USER/PASS: check the password, then [`accept_login`](ServerConnection::accept_login)
    /// or [`reject_login`](ServerConnection::reject_login).
    CheckPassword {
        /// The USER argument.
        user: &'a str,
        /// The PASS argument (may contain spaces).
        password: Secret<&'a [u8]>,
    },
    /// APOP: check `digest` against MD5(timestamp + secret) with
    /// [`crate::apop::verify`], then accept or reject.
    CheckApop {
        /// The mailbox name.
        user: &'a str,
        /// This connection's greeting timestamp, brackets included.
        timestamp: &'a [u8],
        /// The client's digest as sent.
        digest: &'a [u8],
    },
    /// `AUTH`: a SASL exchange begins. For client-first mechanisms the machine has already
    /// obtained the client's first message (initial response or the answer to an empty
    /// challenge), so `initial_response` is `Some`; for CRAM-MD5 it is `None` and the
    /// application sends the first challenge. Answer with
    /// [`auth_challenge`](ServerConnection::auth_challenge), `accept_login` or `reject_login`.
    AuthStart {
        /// The mechanism (one of [`ServerConfig::sasl_mechanisms`]).
        mechanism: Mechanism,
        /// The client's first message, base64-decoded.
        initial_response: Option<Secret<&'a [u8]>>,
    },
    /// The client's answer to the last challenge, base64-decoded.
    AuthResponse {
        /// The decoded data (empty for an empty line).
        response: Secret<&'a [u8]>,
    },
    /// The SASL exchange ended without a login (the client sent `*` or bad base64); the
    /// machine has answered `-ERR`. Drop any mechanism state.
    AuthAborted,
    /// RETR or TOP: stream the message's stored bytes with
    /// [`body_chunk`](ServerConnection::body_chunk) and finish with
    /// [`body_end`](ServerConnection::body_end). The machine normalises line ends,
    /// dot-stuffs, and for TOP cuts the body after `top_lines` lines.
    RetrieveMessage {
        /// 0-based index into the [`Listing`] given at login.
        index: usize,
        /// `Some(n)` for `TOP msg n`.
        top_lines: Option<u64>,
    },
    /// QUIT in TRANSACTION: remove these messages durably, then call
    /// [`commit_done`](ServerConnection::commit_done). The `+OK` is sent only after that.
    Commit {
        /// The 0-based indices marked deleted, ascending.
        deleted: Deleted<'a>,
    },
    /// STLS was accepted and `+OK` queued: flush the output, run the TLS handshake, then call
    /// [`tls_established`](ServerConnection::tls_established). Reading is paused; bytes the
    /// client sent after STLS in plaintext were discarded (RFC 2595 §4).
    StartTls,
    /// The session is over: flush the output, then close the transport.
    Closed(CloseReason),
}

/// The indices of messages marked deleted, ascending.
#[derive(Debug, Clone)]
pub struct Deleted<'a> {
    flags: &'a [bool],
    next: usize,
}

impl Iterator for Deleted<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let offset = self.flags.get(self.next..)?.iter().position(|&d| d)?;
        let index = self.next + offset;
        self.next = index + 1;
        Some(index)
    }
}

/// Why a login failed; each maps to the `-ERR` line the client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginRejection {
    /// Wrong user or password, or any other credential problem: `-ERR [AUTH]`. The same
    /// line for an unknown user and a wrong password (RFC 1939 §13). Counts toward
    /// [`ServerConfig::max_auth_failures`].
    BadCredentials,
    /// Credentials fine, maildrop locked by another session: `-ERR [IN-USE]`.
    InUse,
    /// Logged in too recently: `-ERR [LOGIN-DELAY]`.
    LoginDelay,
    /// Transient failure (storage unavailable): `-ERR [SYS/TEMP]`.
    TemporaryFailure,
    /// The maildrop cannot be opened without an administrator: `-ERR [SYS/PERM]`.
    PermanentFailure,
}

/// Why a message cannot be sent; each maps to the `-ERR` line the client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unavailable {
    /// The message disappeared from storage: `-ERR [SYS/TEMP]`.
    Gone,
    /// The message needs UTF-8 mode (RFC 6856 §2.1): `-ERR [UTF8]`.
    NeedsUtf8,
    /// A storage error: `-ERR [SYS/PERM]`.
    StorageError,
}

/// Result of the commit at QUIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommitOutcome {
    /// Every marked message was removed durably: `+OK`.
    Committed,
    /// Some marked messages could not be removed (unmarked ones are untouched):
    /// `-ERR [SYS/TEMP] some deleted messages not removed` (RFC 1939 §6).
    Failed,
}

/// A call that does not fit the machine's state: a bug in the caller, never the peer's
/// doing. The call had no effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MisuseError {
    /// No decision of this kind was asked for.
    NotPending,
    /// The message body has started: only more chunks, `body_end` or `body_abort` fit.
    BodyStarted,
    /// The connection is closed.
    Closed,
    /// The APOP timestamp is not an RFC 822 msg-id of printable ASCII.
    InvalidTimestamp,
}

impl fmt::Display for MisuseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotPending => "no such decision is pending",
            Self::BodyStarted => "the message body has already started",
            Self::Closed => "the connection is closed",
            Self::InvalidTimestamp => "invalid APOP timestamp",
        })
    }
}

impl core::error::Error for MisuseError {}

/// What happens to a line once handled.
enum LineOutcome {
    /// Answered: consume it.
    Done,
    /// A pending event borrows it: keep it until the next call.
    Held,
    /// Drop it and everything after it (STLS).
    DropInput,
}

/// What the machine waits for before it reads the next command.
#[derive(Debug)]
enum Waiting {
    /// Nothing: read the next command.
    Command,
    /// The application checks credentials (after PASS, APOP or the last SASL step).
    Login,
    /// The application runs a SASL step.
    SaslStep(Mechanism),
    /// The client's next SASL line; `started` is false while the client's first message of
    /// a client-first mechanism is still to come.
    SaslLine { mechanism: Mechanism, started: bool },
    /// The application streams a message.
    Message {
        index: usize,
        stuffer: DotStuffer,
        started: bool,
        top: bool,
    },
    /// A multi-line LIST or UIDL is being produced.
    Listing { uidl: bool, next: usize },
    /// The application commits.
    Commit,
    /// The application runs the TLS handshake.
    Tls,
}

/// An event decided but not yet handed out; data it needs is kept as ranges into the held
/// line so [`ServerConnection::poll_event`] can borrow it.
#[derive(Debug, Clone)]
enum Pending {
    CheckPassword {
        password: Range<usize>,
    },
    CheckApop {
        name: Range<usize>,
        digest: Range<usize>,
    },
    AuthStart {
        mechanism: Mechanism,
        with_data: bool,
    },
    AuthResponse,
    AuthAborted,
    Retrieve {
        index: usize,
        top_lines: Option<u64>,
    },
    Commit,
    StartTls,
    Closed(CloseReason),
}

/// A POP3 server session: bytes in, events and bytes out, time passed in.
///
/// Drive it like this (the adapters in `pop3-tokio` and friends do exactly this):
/// 1. [`receive`](Self::receive) bytes from the peer (or [`receive_eof`](Self::receive_eof)).
/// 2. Drain: call [`poll_event`](Self::poll_event) and answer each event; call
///    [`poll_transmit`](Self::poll_transmit) and write what it gives; repeat both until
///    neither yields anything.
/// 3. Sleep until input arrives or [`poll_timeout`](Self::poll_timeout) passes, then call
///    [`handle_timeout`](Self::handle_timeout) and drain again.
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use pop3_proto::{Listing, server::{ServerConfig, ServerConnection, ServerEvent}};
///
/// let mut config = ServerConfig::new();
/// config.allow_plaintext_without_tls = true;
/// let mut s = ServerConnection::new(Arc::new(config), Duration::ZERO, None).unwrap();
/// let mut out = Vec::new();
/// s.receive(Duration::ZERO, b"USER alice\r\nPASS secret\r\nSTAT\r\n");
/// while let Some(event) = s.poll_event() {
///     match event {
///         ServerEvent::CheckPassword { user, password } => {
///             assert_eq!((user, *password.expose()), ("alice", &b"secret"[..]));
///             let mut listing = Listing::new();
///             listing.push(58, b"uid-1").unwrap();
///             s.accept_login(listing).unwrap();
///         }
///         other => panic!("{other:?}"),
///     }
/// }
/// let _ = s.poll_transmit(&mut out);
/// assert!(out.ends_with(b"+OK 1 58\r\n"));
/// ```
#[derive(Debug)]
pub struct ServerConnection {
    config: Arc<ServerConfig>,
    reader: LineReader,
    /// Length of the line the last event borrowed from; consumed on the next call.
    held_line: usize,
    out: Vec<u8>,
    state: SessionState,
    waiting: Waiting,
    pending: Option<Pending>,
    /// USER argument awaiting PASS.
    user: Option<String>,
    apop_timestamp: Option<Vec<u8>>,
    /// Decoded SASL data of the current step.
    sasl_data: Vec<u8>,
    listing: Listing,
    deleted: Vec<bool>,
    live_count: usize,
    live_octets: u64,
    auth_failures: u32,
    secure: bool,
    utf8: bool,
    eof: bool,
    deadline: Duration,
}

impl ServerConnection {
    /// Starts a session and queues the greeting. `apop_timestamp` (a fresh
    /// `<unique@host>` per connection, R1939-APOP-2) enables APOP.
    pub fn new(
        config: Arc<ServerConfig>,
        now: Duration,
        apop_timestamp: Option<&[u8]>,
    ) -> Result<Self, MisuseError> {
        if let Some(ts) = apop_timestamp
            && !crate::apop::is_valid_timestamp(ts)
        {
            return Err(MisuseError::InvalidTimestamp);
        }
        let secure = config.tls == TlsMode::Implicit;
        let mut s = Self {
            reader: LineReader::new(),
            held_line: 0,
            out: Vec::with_capacity(512),
            state: SessionState::Authorization,
            waiting: Waiting::Command,
            pending: None,
            user: None,
            apop_timestamp: apop_timestamp.map(<[u8]>::to_vec),
            sasl_data: Vec::new(),
            listing: Listing::new(),
            deleted: Vec::new(),
            live_count: 0,
            live_octets: 0,
            auth_failures: 0,
            secure,
            utf8: false,
            eof: false,
            deadline: now.saturating_add(config.autologout.max(MIN_AUTOLOGOUT)),
            config,
        };
        let greeting = s.config.greeting.as_bytes();
        let greeting = &greeting[..greeting.len().min(400)];
        s.out.extend_from_slice(b"+OK ");
        s.out.extend_from_slice(greeting);
        if let Some(ts) = &s.apop_timestamp {
            s.out.push(b' ');
            s.out.extend_from_slice(ts);
        }
        s.out.extend_from_slice(b"\r\n");
        Ok(s)
    }

    // ---- getters -------------------------------------------------------------------

    /// The RFC 1939 session state.
    pub const fn state(&self) -> SessionState {
        self.state
    }

    /// True once TLS protects the connection (implicit TLS, or after STLS).
    pub const fn is_secure(&self) -> bool {
        self.secure
    }

    /// True after the client enabled UTF-8 mode (RFC 6856 §2); messages that need it may be
    /// refused otherwise with [`Unavailable::NeedsUtf8`].
    pub const fn is_utf8(&self) -> bool {
        self.utf8
    }

    /// True once the session is over. Output may still wait in
    /// [`poll_transmit`](Self::poll_transmit).
    pub fn is_closed(&self) -> bool {
        self.state == SessionState::Closed
    }

    /// False while the adapter should not read: closed, paused for the TLS handshake, or
    /// enough unanswered input buffered ([`ServerConfig::sasl_line_limit`]).
    pub fn wants_read(&self) -> bool {
        !self.is_closed()
            && !self.eof
            && !matches!(self.waiting, Waiting::Tls)
            && self.reader.buffered() < self.config.sasl_line_limit
    }

    /// The listing handed over at login (empty before).
    pub const fn listing(&self) -> &Listing {
        &self.listing
    }

    // ---- input ---------------------------------------------------------------------

    /// Feeds bytes received from the client. Any input restarts the autologout timer.
    pub fn receive(&mut self, now: Duration, bytes: &[u8]) {
        self.release_line();
        if self.is_closed() || self.eof || matches!(self.waiting, Waiting::Tls) {
            // After STLS nothing may arrive before the handshake (RFC 2595 §4).
            return;
        }
        self.deadline = now.saturating_add(self.autologout());
        let limit = LineLimit {
            normal: self.config.command_line_limit,
            sasl: self
                .config
                .sasl_line_limit
                .max(self.config.command_line_limit),
            awaiting_sasl_line: matches!(self.waiting, Waiting::SaslLine { .. }),
        };
        self.reader.push(bytes, limit);
    }

    /// The client closed its sending side. Commands already received are still answered
    /// (a script may send `...QUIT` and half-close); then the session closes without UPDATE
    /// unless one of them was QUIT.
    pub fn receive_eof(&mut self, _now: Duration) {
        self.eof = true;
    }

    /// The TLS handshake that followed [`ServerEvent::StartTls`] succeeded. The session
    /// stays in AUTHORIZATION and forgets any USER given before (RFC 2595 §4).
    pub fn tls_established(&mut self) -> Result<(), MisuseError> {
        if !matches!(self.waiting, Waiting::Tls) {
            return Err(self.misuse());
        }
        self.secure = true;
        self.user = None;
        self.waiting = Waiting::Command;
        Ok(())
    }

    // ---- time ----------------------------------------------------------------------

    /// When [`handle_timeout`](Self::handle_timeout) should be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        (!self.is_closed()).then_some(self.deadline)
    }

    /// Advances time. When the client has been silent for [`ServerConfig::autologout`]
    /// while the server was idle, the session closes silently and nothing is committed
    /// (RFC 1939 §3). While the application is still producing a response, an expiry only
    /// re-arms the timer. Early or repeated calls do nothing.
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.is_closed() || now < self.deadline {
            return;
        }
        let idle = matches!(self.waiting, Waiting::Command | Waiting::SaslLine { .. })
            && self.out.is_empty()
            && self.pending.is_none();
        if idle {
            self.close(CloseReason::Autologout);
        } else {
            self.deadline = now.saturating_add(self.autologout());
        }
    }

    // ---- output --------------------------------------------------------------------

    /// The next decision for the application, or `None` when the machine needs input, an
    /// answer to the previous event, or for its output to be drained.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent<'_>> {
        self.release_line();
        if self.pending.is_none() {
            self.process_input();
        }
        let pending = self.pending.take()?;
        if matches!(
            pending,
            Pending::CheckPassword { .. } | Pending::CheckApop { .. }
        ) {
            // The event borrows the current line: consume it on the next call.
            self.held_line = self.reader.peek().map_or(0, |(_, len)| len);
        }
        let line = match self.reader.peek() {
            Some((Line::Complete(line), _)) => line,
            _ => &[],
        };
        let slice = |r: Range<usize>| line.get(r).unwrap_or_default();
        Some(match pending {
            Pending::CheckPassword { password } => ServerEvent::CheckPassword {
                user: self.user.as_deref().unwrap_or_default(),
                password: Secret::new(slice(password)),
            },
            Pending::CheckApop { name, digest } => ServerEvent::CheckApop {
                user: core::str::from_utf8(slice(name)).unwrap_or_default(),
                timestamp: self.apop_timestamp.as_deref().unwrap_or_default(),
                digest: slice(digest),
            },
            Pending::AuthStart {
                mechanism,
                with_data,
            } => ServerEvent::AuthStart {
                mechanism,
                initial_response: with_data.then(|| Secret::new(&self.sasl_data[..])),
            },
            Pending::AuthResponse => ServerEvent::AuthResponse {
                response: Secret::new(&self.sasl_data[..]),
            },
            Pending::AuthAborted => ServerEvent::AuthAborted,
            Pending::Retrieve { index, top_lines } => {
                ServerEvent::RetrieveMessage { index, top_lines }
            }
            Pending::Commit => ServerEvent::Commit {
                deleted: Deleted {
                    flags: &self.deleted,
                    next: 0,
                },
            },
            Pending::StartTls => ServerEvent::StartTls,
            Pending::Closed(reason) => ServerEvent::Closed(reason),
        })
    }

    /// Appends the bytes to send to `out` and returns how many. The adapter owns `out` and
    /// reuses it; when `out` is empty the internal buffer is swapped in without copying.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        self.fill_listing();
        let n = self.out.len();
        if out.is_empty() {
            mem::swap(out, &mut self.out);
        } else {
            out.extend_from_slice(&self.out);
            self.out.clear();
        }
        n
    }

    // ---- application decisions ---------------------------------------------------------

    /// Login succeeded and the maildrop is open (and locked): enter TRANSACTION with this
    /// listing, no message marked deleted (R1939-ST-3).
    pub fn accept_login(&mut self, listing: Listing) -> Result<(), MisuseError> {
        if !matches!(self.waiting, Waiting::Login | Waiting::SaslStep(_)) {
            return Err(self.misuse());
        }
        self.release_line();
        self.sasl_data.clear();
        self.user = None;
        self.live_count = listing.len();
        self.live_octets = listing.total_size();
        self.deleted.clear();
        self.deleted.resize(listing.len(), false);
        self.listing = listing;
        self.state = SessionState::Transaction;
        self.waiting = Waiting::Command;
        self.out.extend_from_slice(b"+OK Logged in, ");
        self.push_maildrop_summary();
        Ok(())
    }

    /// Login failed: answer `-ERR` with the matching response code and stay in
    /// AUTHORIZATION, or close after [`ServerConfig::max_auth_failures`] credential
    /// failures. A failed-login delay, if wanted, is the caller's: call this later.
    pub fn reject_login(&mut self, why: LoginRejection) -> Result<(), MisuseError> {
        if !matches!(self.waiting, Waiting::Login | Waiting::SaslStep(_)) {
            return Err(self.misuse());
        }
        self.release_line();
        self.sasl_data.clear();
        self.user = None;
        self.waiting = Waiting::Command;
        let (code, text): (_, &[u8]) = match why {
            LoginRejection::BadCredentials => (ResponseCode::AUTH, b"Authentication failed."),
            LoginRejection::InUse => (
                ResponseCode::IN_USE,
                b"Maildrop is locked by another session.",
            ),
            LoginRejection::LoginDelay => (ResponseCode::LOGIN_DELAY, b"Logged in too recently."),
            LoginRejection::TemporaryFailure => (
                ResponseCode::SYS_TEMP,
                b"Temporary server failure, try again later.",
            ),
            LoginRejection::PermanentFailure => (
                ResponseCode::SYS_PERM,
                b"Maildrop cannot be opened; contact the administrator.",
            ),
        };
        Status::err_code(code, text).encode(&mut self.out);
        if why == LoginRejection::BadCredentials {
            self.count_auth_failure();
        }
        Ok(())
    }

    /// Sends a SASL challenge (`+ base64`) and waits for the client's answer, which comes
    /// back as [`ServerEvent::AuthResponse`]. To send final server data (RFC 5034 §4:
    /// POP3 has no "success with data"), send it as a challenge, then accept on the
    /// client's empty answer.
    pub fn auth_challenge(&mut self, data: &[u8]) -> Result<(), MisuseError> {
        let Waiting::SaslStep(mechanism) = self.waiting else {
            return Err(self.misuse());
        };
        self.release_line();
        sasl::encode_challenge(data, &mut self.out);
        self.waiting = Waiting::SaslLine {
            mechanism,
            started: true,
        };
        Ok(())
    }

    /// Streams the next piece of the stored message for the pending RETR/TOP. Line ends are
    /// normalised to CRLF and lines starting with `.` are stuffed. Returns
    /// [`Progress::Done`] once a TOP has all its lines: stop reading and call
    /// [`body_end`](Self::body_end). Drain [`poll_transmit`](Self::poll_transmit) between
    /// chunks: the output grows by up to twice the chunk.
    pub fn body_chunk(&mut self, raw: &[u8]) -> Result<Progress, MisuseError> {
        self.start_body()?;
        let Waiting::Message { stuffer, .. } = &mut self.waiting else {
            return Err(MisuseError::NotPending);
        };
        Ok(stuffer.stuff(raw, &mut self.out))
    }

    /// Ends the message: completes a last line without line end, adds TOP's blank line
    /// when the message had no body separator, and sends the terminating `.`.
    pub fn body_end(&mut self) -> Result<(), MisuseError> {
        self.start_body()?;
        let Waiting::Message { stuffer, .. } = &mut self.waiting else {
            return Err(MisuseError::NotPending);
        };
        stuffer.finish(&mut self.out);
        self.waiting = Waiting::Command;
        Ok(())
    }

    /// The message cannot be sent: answer `-ERR` (single line, R1939-RETR-2) instead of a
    /// body. Only before the first [`body_chunk`](Self::body_chunk).
    pub fn message_unavailable(&mut self, why: Unavailable) -> Result<(), MisuseError> {
        match self.waiting {
            Waiting::Message { started: false, .. } => {}
            Waiting::Message { started: true, .. } => return Err(MisuseError::BodyStarted),
            _ => return Err(self.misuse()),
        }
        self.release_line();
        let (code, text): (_, &[u8]) = match why {
            Unavailable::Gone => (ResponseCode::SYS_TEMP, b"Message is no longer available."),
            Unavailable::NeedsUtf8 => (ResponseCode::UTF8, b"Message requires UTF8 mode."),
            Unavailable::StorageError => (ResponseCode::SYS_PERM, b"Message cannot be read."),
        };
        Status::err_code(code, text).encode(&mut self.out);
        self.waiting = Waiting::Command;
        Ok(())
    }

    /// Reading the message failed after its first chunk was sent. POP3 cannot signal an
    /// error inside a body, so the connection closes; the client sees no terminator and
    /// must not take the message as complete. Nothing is committed.
    pub fn body_abort(&mut self) -> Result<(), MisuseError> {
        if !matches!(self.waiting, Waiting::Message { .. }) {
            return Err(self.misuse());
        }
        self.close(CloseReason::BodyAborted);
        Ok(())
    }

    /// The commit asked for by [`ServerEvent::Commit`] is done (or failed). Sends the QUIT
    /// reply and closes (RFC 1939 §6).
    pub fn commit_done(&mut self, outcome: CommitOutcome) -> Result<(), MisuseError> {
        if !matches!(self.waiting, Waiting::Commit) {
            return Err(self.misuse());
        }
        self.release_line();
        match outcome {
            CommitOutcome::Committed => Status::ok(b"Logging out.").encode(&mut self.out),
            CommitOutcome::Failed => Status::err_code(
                ResponseCode::SYS_TEMP,
                b"Some deleted messages not removed.",
            )
            .encode(&mut self.out),
        }
        self.close(CloseReason::Quit);
        Ok(())
    }

    // ---- internals -----------------------------------------------------------------

    fn autologout(&self) -> Duration {
        self.config.autologout.max(MIN_AUTOLOGOUT)
    }

    fn misuse(&self) -> MisuseError {
        if self.is_closed() {
            MisuseError::Closed
        } else {
            MisuseError::NotPending
        }
    }

    fn release_line(&mut self) {
        if self.held_line > 0 {
            self.reader.consume(self.held_line);
            self.held_line = 0;
        }
    }

    fn close(&mut self, reason: CloseReason) {
        self.release_line();
        self.reader.clear();
        self.state = SessionState::Closed;
        self.waiting = Waiting::Command;
        self.pending = Some(Pending::Closed(reason));
    }

    fn count_auth_failure(&mut self) {
        self.auth_failures += 1;
        if self.auth_failures >= self.config.max_auth_failures {
            self.close(CloseReason::TooManyAuthFailures);
        }
    }

    fn start_body(&mut self) -> Result<(), MisuseError> {
        let Waiting::Message {
            index,
            started,
            top,
            ..
        } = &mut self.waiting
        else {
            return Err(self.misuse());
        };
        if !*started {
            *started = true;
            let index = *index;
            let top = *top;
            self.release_line();
            if top {
                self.out
                    .extend_from_slice(b"+OK Top of message follows.\r\n");
            } else {
                self.out.extend_from_slice(b"+OK ");
                push_u64(&mut self.out, self.listing.size(index).unwrap_or(0));
                self.out.extend_from_slice(b" octets\r\n");
            }
        }
        Ok(())
    }

    /// Reads and answers commands until one needs the application, input runs out, or
    /// output must drain first.
    fn process_input(&mut self) {
        // The reader is moved out while lines are handled, so a command can borrow its line
        // while `self` is changed; `LineReader::new` does not allocate.
        let mut reader = mem::replace(&mut self.reader, LineReader::new());
        while self.pending.is_none()
            && !self.is_closed()
            && matches!(self.waiting, Waiting::Command | Waiting::SaslLine { .. })
            && self.out.len() < self.config.output_high_water
        {
            let Some((line, len)) = reader.peek() else {
                if self.eof {
                    self.close(CloseReason::PeerClosed);
                }
                break;
            };
            let outcome = match (line, &self.waiting) {
                (Line::TooLong, _) => self.too_long(),
                (Line::Complete(line), &Waiting::SaslLine { mechanism, started }) => {
                    self.sasl_line(line, mechanism, started)
                }
                (Line::Complete(line), _) => self.command(line),
            };
            match outcome {
                LineOutcome::Done => reader.consume(len),
                LineOutcome::Held => break,
                LineOutcome::DropInput => reader.clear(),
            }
        }
        if self.is_closed() {
            reader.clear();
        }
        self.reader = reader;
    }

    fn too_long(&mut self) -> LineOutcome {
        if let Waiting::SaslLine { started, .. } = self.waiting {
            self.waiting = Waiting::Command;
            // The application only knows of exchanges it has seen start.
            self.pending = started.then_some(Pending::AuthAborted);
            Status::err(b"Authentication line too long.").encode(&mut self.out);
        } else {
            Status::err(b"Line too long.").encode(&mut self.out);
        }
        LineOutcome::Done
    }

    /// A SASL client line: `*`, base64 data, or an empty line.
    fn sasl_line(&mut self, line: &[u8], mechanism: Mechanism, started: bool) -> LineOutcome {
        match sasl::decode_client_line(line, &mut self.sasl_data) {
            Ok(ClientLine::Data) => {
                self.waiting = Waiting::SaslStep(mechanism);
                self.pending = Some(if started {
                    Pending::AuthResponse
                } else {
                    Pending::AuthStart {
                        mechanism,
                        with_data: true,
                    }
                });
            }
            Ok(ClientLine::Cancel) | Err(_) => {
                self.waiting = Waiting::Command;
                let text: &[u8] = if line == b"*" {
                    b"Authentication cancelled."
                } else {
                    b"Invalid base64 data."
                };
                Status::err(text).encode(&mut self.out);
                // The application only knows of exchanges it has seen start.
                self.pending = started.then_some(Pending::AuthAborted);
            }
        }
        LineOutcome::Done
    }

    /// Parses and answers one command.
    fn command(&mut self, line: &[u8]) -> LineOutcome {
        let cmd = match Command::parse_line(line) {
            Ok(cmd) => cmd,
            Err(e) => {
                let text: &[u8] = match e {
                    CommandError::UnknownCommand => b"Unknown command.",
                    CommandError::MissingArgument => b"Missing argument.",
                    CommandError::TooManyArguments => b"Too many arguments.",
                    CommandError::InvalidNumber => b"Invalid message number.",
                    _ => b"Invalid argument.",
                };
                Status::err(text).encode(&mut self.out);
                return LineOutcome::Done;
            }
        };
        // Only AUTH may use the longer SASL limit (the reader let any `AUTH ` line through).
        if line.len() + 2 > self.config.command_line_limit && !matches!(cmd, Command::Auth { .. }) {
            Status::err(b"Line too long.").encode(&mut self.out);
            return LineOutcome::Done;
        }
        match self.state {
            SessionState::Authorization => self.authorization(cmd, line),
            SessionState::Transaction => {
                self.transaction(cmd);
                LineOutcome::Done
            }
            SessionState::Update | SessionState::Closed => LineOutcome::Done,
        }
    }

    fn plaintext_allowed(&self) -> bool {
        self.secure || self.config.allow_plaintext_without_tls
    }

    fn mechanism_available(&self, m: Mechanism) -> bool {
        self.config.sasl_mechanisms.contains(&m)
            && match m {
                Mechanism::External => self.secure,
                m if m.sends_plaintext_secret() => self.plaintext_allowed(),
                _ => true,
            }
    }

    fn refuse_plaintext(&mut self) {
        // RFC 8314 §4.1: the same reply whether or not the credentials were right.
        Status::err_code(
            ResponseCode::AUTH,
            b"Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
        )
        .encode(&mut self.out);
    }

    fn authorization(&mut self, cmd: Command<'_>, line: &[u8]) -> LineOutcome {
        // Where an argument sits in the line, for events that borrow it later.
        let range = |arg: &[u8]| {
            let start = (arg.as_ptr() as usize).saturating_sub(line.as_ptr() as usize);
            start..start + arg.len()
        };
        match cmd {
            Command::Capa => self.capa(),
            Command::Quit => {
                Status::ok(b"Logging out.").encode(&mut self.out);
                self.close(CloseReason::Quit);
            }
            Command::User(name) => {
                if !self.config.user_pass {
                    Status::err(b"USER/PASS is not offered; use AUTH.").encode(&mut self.out);
                } else if !self.plaintext_allowed() {
                    self.refuse_plaintext();
                } else {
                    // +OK for any name: a -ERR here would reveal which users exist
                    // (R1939-USER-2). A second USER replaces the first.
                    let user = self.user.get_or_insert_with(String::new);
                    user.clear();
                    user.push_str(name);
                    Status::ok(b"Send PASS.").encode(&mut self.out);
                }
            }
            Command::Pass(password) => {
                if !self.config.user_pass {
                    Status::err(b"USER/PASS is not offered; use AUTH.").encode(&mut self.out);
                } else if !self.plaintext_allowed() {
                    self.refuse_plaintext();
                } else if self.user.is_none() {
                    Status::err(b"No user name given: send USER first.").encode(&mut self.out);
                } else {
                    self.waiting = Waiting::Login;
                    self.pending = Some(Pending::CheckPassword {
                        password: range(password.expose()),
                    });
                    return LineOutcome::Held;
                }
            }
            Command::Apop { name, digest } => {
                if self.apop_timestamp.is_none() {
                    Status::err(b"APOP is not offered.").encode(&mut self.out);
                } else {
                    self.user = None;
                    self.waiting = Waiting::Login;
                    self.pending = Some(Pending::CheckApop {
                        name: range(name.as_bytes()),
                        digest: range(digest.as_bytes()),
                    });
                    return LineOutcome::Held;
                }
            }
            Command::AuthList => {
                Status::ok(b"Supported mechanisms follow.").encode(&mut self.out);
                for m in self.config.sasl_mechanisms.iter().copied() {
                    if self.mechanism_available(m) {
                        self.out.extend_from_slice(m.name().as_bytes());
                        self.out.extend_from_slice(b"\r\n");
                    }
                }
                self.out.extend_from_slice(b".\r\n");
            }
            Command::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response),
            Command::Stls => return self.stls(),
            Command::Utf8 => {
                self.utf8 = true;
                Status::ok(b"UTF8 enabled.").encode(&mut self.out);
            }
            Command::Lang(range) => self.lang(range),
            Command::Stat
            | Command::List(_)
            | Command::Retr(_)
            | Command::Dele(_)
            | Command::Noop
            | Command::Rset
            | Command::Top { .. }
            | Command::Uidl(_) => {
                Status::err(b"Not logged in.").encode(&mut self.out);
            }
        }
        LineOutcome::Done
    }

    fn auth(&mut self, name: &str, initial_response: Option<Secret<&[u8]>>) {
        self.user = None;
        let Some(mechanism) =
            Mechanism::from_name(name).filter(|m| self.config.sasl_mechanisms.contains(m))
        else {
            Status::err(b"Unsupported authentication mechanism.").encode(&mut self.out);
            return;
        };
        if !self.mechanism_available(mechanism) {
            if mechanism == Mechanism::External {
                Status::err_code(ResponseCode::AUTH, b"EXTERNAL needs TLS.").encode(&mut self.out);
            } else {
                self.refuse_plaintext();
            }
            return;
        }
        let first = mechanism.first_message();
        match initial_response {
            Some(_) if first == FirstMessage::Server => {
                // R5034-AUTH-9: a server-first mechanism cannot take an initial response.
                Status::err(b"This mechanism takes no initial response.").encode(&mut self.out);
            }
            Some(ir) => {
                let mut data = mem::take(&mut self.sasl_data);
                let decoded = sasl::decode_initial_response(ir.expose(), &mut data);
                self.sasl_data = data;
                if decoded.is_err() {
                    Status::err(b"Invalid base64 data.").encode(&mut self.out);
                    return;
                }
                self.waiting = Waiting::SaslStep(mechanism);
                self.pending = Some(Pending::AuthStart {
                    mechanism,
                    with_data: true,
                });
            }
            None if first == FirstMessage::Client => {
                // R5034-AUTH-6: ask for the client's first message with an empty challenge.
                self.out.extend_from_slice(b"+ \r\n");
                self.waiting = Waiting::SaslLine {
                    mechanism,
                    started: false,
                };
            }
            None => {
                self.sasl_data.clear();
                self.waiting = Waiting::SaslStep(mechanism);
                self.pending = Some(Pending::AuthStart {
                    mechanism,
                    with_data: false,
                });
            }
        }
    }

    fn stls(&mut self) -> LineOutcome {
        if self.secure {
            Status::err(b"TLS is already active.").encode(&mut self.out);
        } else if self.config.tls != TlsMode::Stls {
            Status::err(b"STLS is not offered.").encode(&mut self.out);
        } else if self.utf8 {
            // RFC 6856 §2.1: STLS after UTF8 may be refused, and we do.
            Status::err(b"STLS is not allowed after UTF8.").encode(&mut self.out);
        } else {
            Status::ok(b"Begin TLS negotiation now.").encode(&mut self.out);
            self.user = None;
            self.waiting = Waiting::Tls;
            self.pending = Some(Pending::StartTls);
            // RFC 2595 §4 / NO STARTTLS: whatever followed STLS in plaintext is dropped.
            return LineOutcome::DropInput;
        }
        LineOutcome::Done
    }

    fn lang(&mut self, range: Option<&str>) {
        // Only English texts exist; `LANG` is offered so clients can ask (RFC 6856 §3).
        match range {
            None => {
                Status::ok(b"Language listing follows.").encode(&mut self.out);
                self.out.extend_from_slice(b"en English\r\n.\r\n");
            }
            Some(r)
                if r == "*"
                    || r.split('-')
                        .next()
                        .is_some_and(|p| p.eq_ignore_ascii_case("en")) =>
            {
                Status::ok(b"en English is the language.").encode(&mut self.out);
            }
            Some(_) => Status::err(b"Unsupported language.").encode(&mut self.out),
        }
    }

    fn transaction(&mut self, cmd: Command<'_>) {
        match cmd {
            Command::Stat => {
                self.out.extend_from_slice(b"+OK ");
                push_u64(&mut self.out, self.live_count as u64);
                self.out.push(b' ');
                push_u64(&mut self.out, self.live_octets);
                self.out.extend_from_slice(b"\r\n");
            }
            Command::List(None) | Command::Uidl(None) => {
                let uidl = matches!(cmd, Command::Uidl(_));
                if uidl {
                    Status::ok(b"Unique-ID listing follows.").encode(&mut self.out);
                } else {
                    self.out.extend_from_slice(b"+OK ");
                    self.push_maildrop_summary();
                }
                self.waiting = Waiting::Listing { uidl, next: 0 };
            }
            Command::List(Some(n)) | Command::Uidl(Some(n)) => {
                let Some(index) = self.live_index(n) else {
                    return self.no_such_message();
                };
                self.out.extend_from_slice(b"+OK ");
                self.push_listing_line(index, matches!(cmd, Command::Uidl(_)));
            }
            Command::Retr(n) | Command::Top { msg: n, .. } => {
                let Some(index) = self.live_index(n) else {
                    return self.no_such_message();
                };
                let top_lines = match cmd {
                    Command::Top { lines, .. } => Some(lines),
                    _ => None,
                };
                self.waiting = Waiting::Message {
                    index,
                    stuffer: top_lines.map_or_else(DotStuffer::new, DotStuffer::top),
                    started: false,
                    top: top_lines.is_some(),
                };
                self.pending = Some(Pending::Retrieve { index, top_lines });
            }
            Command::Dele(n) => {
                let Some(index) = self.live_index(n) else {
                    return self.no_such_message();
                };
                self.deleted[index] = true;
                self.live_count -= 1;
                self.live_octets -= self.listing.size(index).unwrap_or(0);
                self.out.extend_from_slice(b"+OK Message ");
                push_u64(&mut self.out, u64::from(n));
                self.out.extend_from_slice(b" deleted.\r\n");
            }
            Command::Noop => Status::ok(b"No operation.").encode(&mut self.out),
            Command::Rset => {
                self.deleted.fill(false);
                self.live_count = self.listing.len();
                self.live_octets = self.listing.total_size();
                self.out.extend_from_slice(b"+OK ");
                self.push_maildrop_summary();
            }
            Command::Quit => {
                self.state = SessionState::Update;
                self.waiting = Waiting::Commit;
                self.pending = Some(Pending::Commit);
            }
            Command::Capa => self.capa(),
            Command::Lang(range) => self.lang(range),
            Command::User(_)
            | Command::Pass(_)
            | Command::Apop { .. }
            | Command::Auth { .. }
            | Command::AuthList
            | Command::Stls
            | Command::Utf8 => {
                Status::err(b"Already logged in.").encode(&mut self.out);
            }
        }
    }

    /// Maps a message number to an index, or `None` for 0, out of range, or deleted.
    fn live_index(&self, n: u32) -> Option<usize> {
        let index = (n as usize).checked_sub(1)?;
        (!*self.deleted.get(index)?).then_some(index)
    }

    fn no_such_message(&mut self) {
        Status::err(b"No such message.").encode(&mut self.out);
    }

    /// `N messages (M octets)\r\n`
    fn push_maildrop_summary(&mut self) {
        push_u64(&mut self.out, self.live_count as u64);
        self.out.extend_from_slice(b" messages (");
        push_u64(&mut self.out, self.live_octets);
        self.out.extend_from_slice(b" octets)\r\n");
    }

    /// `n size\r\n` or `n uid\r\n`
    fn push_listing_line(&mut self, index: usize, uidl: bool) {
        push_u64(&mut self.out, index as u64 + 1);
        self.out.push(b' ');
        if uidl {
            self.out
                .extend_from_slice(self.listing.uid(index).unwrap_or_default());
        } else {
            push_u64(&mut self.out, self.listing.size(index).unwrap_or(0));
        }
        self.out.extend_from_slice(b"\r\n");
    }

    fn fill_listing(&mut self) {
        let Waiting::Listing { uidl, mut next } = self.waiting else {
            return;
        };
        while self.out.len() < LISTING_CHUNK {
            let Some(&deleted) = self.deleted.get(next) else {
                self.out.extend_from_slice(b".\r\n");
                self.waiting = Waiting::Command;
                return;
            };
            if !deleted {
                self.push_listing_line(next, uidl);
            }
            next += 1;
        }
        self.waiting = Waiting::Listing { uidl, next };
    }

    fn capa(&mut self) {
        let transaction = self.state == SessionState::Transaction;
        Status::ok(b"Capability list follows.").encode(&mut self.out);
        let mut caps: [Option<Capability<'_>>; 6] = [
            Some(Capability::Top),
            Some(Capability::Uidl),
            Some(Capability::RespCodes),
            Some(Capability::AuthRespCode),
            Some(Capability::Pipelining),
            (self.config.user_pass && self.plaintext_allowed()).then_some(Capability::User),
        ];
        for cap in caps.iter_mut().filter_map(Option::take) {
            cap.encode(&mut self.out);
        }
        // SASL stays listed after login (R5034-CAP-4).
        let mut any = false;
        for m in self.config.sasl_mechanisms.iter().copied() {
            if self.mechanism_available(m) {
                self.out
                    .extend_from_slice(if any { b" " } else { b"SASL " });
                self.out.extend_from_slice(m.name().as_bytes());
                any = true;
            }
        }
        if any {
            self.out.extend_from_slice(b"\r\n");
        }
        // STLS only where it may be used (RFC 2595 §4, R2595-STLS-2).
        if !transaction && !self.secure && self.config.tls == TlsMode::Stls {
            Capability::Stls.encode(&mut self.out);
        }
        Capability::Utf8 { user: true }.encode(&mut self.out);
        Capability::Lang.encode(&mut self.out);
        if let Some(seconds) = self.config.login_delay {
            Capability::LoginDelay {
                seconds,
                per_user: false,
            }
            .encode(&mut self.out);
        }
        if let Some(policy) = self.config.expire {
            Capability::Expire {
                policy,
                per_user: false,
            }
            .encode(&mut self.out);
        }
        if let Some(text) = &self.config.implementation
            && (transaction || self.config.implementation_before_login)
        {
            Capability::Implementation(text).encode(&mut self.out);
        }
        self.out.extend_from_slice(b".\r\n");
    }
}

impl crate::Connection for ServerConnection {
    type Event<'a> = ServerEvent<'a>;

    fn receive(&mut self, now: Duration, bytes: &[u8]) {
        Self::receive(self, now, bytes);
    }

    fn receive_eof(&mut self, now: Duration) {
        Self::receive_eof(self, now);
    }

    fn poll_event(&mut self) -> Option<ServerEvent<'_>> {
        Self::poll_event(self)
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        Self::poll_transmit(self, out)
    }

    fn poll_timeout(&self) -> Option<Duration> {
        Self::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Duration) {
        Self::handle_timeout(self, now);
    }

    fn wants_read(&self) -> bool {
        Self::wants_read(self)
    }

    fn is_closed(&self) -> bool {
        Self::is_closed(self)
    }
}

/// A [`ServerEvent`] copied out of the machine, for drivers that hand decisions to an
/// application across an `await` (the event itself borrows the machine). Every adapter
/// uses this one conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerDecision {
    /// See [`ServerEvent::CheckPassword`].
    CheckPassword {
        /// The USER argument.
        user: String,
        /// The PASS argument.
        password: Secret<Vec<u8>>,
    },
    /// See [`ServerEvent::CheckApop`].
    CheckApop {
        /// The mailbox name.
        user: String,
        /// The greeting timestamp.
        timestamp: Vec<u8>,
        /// The client's digest.
        digest: Vec<u8>,
    },
    /// See [`ServerEvent::AuthStart`].
    AuthStart {
        /// The mechanism.
        mechanism: Mechanism,
        /// The client's first message, decoded.
        initial_response: Option<Secret<Vec<u8>>>,
    },
    /// See [`ServerEvent::AuthResponse`].
    AuthResponse {
        /// The decoded response.
        response: Secret<Vec<u8>>,
    },
    /// See [`ServerEvent::AuthAborted`].
    AuthAborted,
    /// See [`ServerEvent::RetrieveMessage`].
    RetrieveMessage {
        /// 0-based index into the listing.
        index: usize,
        /// `Some(n)` for TOP.
        top_lines: Option<u64>,
    },
    /// See [`ServerEvent::Commit`].
    Commit {
        /// The 0-based indices marked deleted.
        deleted: Vec<usize>,
    },
    /// See [`ServerEvent::StartTls`].
    StartTls,
    /// See [`ServerEvent::Closed`].
    Closed(CloseReason),
}

impl From<ServerEvent<'_>> for ServerDecision {
    fn from(event: ServerEvent<'_>) -> Self {
        match event {
            ServerEvent::CheckPassword { user, password } => Self::CheckPassword {
                user: String::from(user),
                password: Secret::new(password.expose().to_vec()),
            },
            ServerEvent::CheckApop {
                user,
                timestamp,
                digest,
            } => Self::CheckApop {
                user: String::from(user),
                timestamp: timestamp.to_vec(),
                digest: digest.to_vec(),
            },
            ServerEvent::AuthStart {
                mechanism,
                initial_response,
            } => Self::AuthStart {
                mechanism,
                initial_response: initial_response.map(|r| Secret::new(r.expose().to_vec())),
            },
            ServerEvent::AuthResponse { response } => Self::AuthResponse {
                response: Secret::new(response.expose().to_vec()),
            },
            ServerEvent::AuthAborted => Self::AuthAborted,
            ServerEvent::RetrieveMessage { index, top_lines } => {
                Self::RetrieveMessage { index, top_lines }
            }
            ServerEvent::Commit { deleted } => Self::Commit {
                deleted: deleted.collect(),
            },
            ServerEvent::StartTls => Self::StartTls,
            ServerEvent::Closed(reason) => Self::Closed(reason),
        }
    }
}
