//! The client side: [`ClientConnection`], a POP3 client session as a pure state machine.
//!
//! The application queues commands with [`send`](ClientConnection::send) (or the helpers
//! [`authenticate`](ClientConnection::authenticate), [`apop`](ClientConnection::apop),
//! [`stls`](ClientConnection::stls)) and gets a [`CommandHandle`] back; replies come back as
//! [`ClientEvent`]s carrying that handle, in order. Commands go out pipelined when the
//! server announced PIPELINING in CAPA (up to [`ClientConfig::pipelining_window`] in flight),
//! one at a time otherwise; STLS and AUTH always go alone (RFC 2449 §6.6, RFC 2595 §4).
//!
//! Every reply ends with exactly one final event for its handle: [`ClientEvent::Status`]
//! with `more: false`, a typed [`Stat`](ClientEvent::Stat) / [`Scan`](ClientEvent::Scan) /
//! [`UniqueId`](ClientEvent::UniqueId) for `STAT`, `LIST n`, `UIDL n`, or
//! [`End`](ClientEvent::End) after the lines of a multi-line reply. A `-ERR` is always a
//! single line, even for multi-line commands (R1939-RETR-3). Message bodies stream out
//! dot-unstuffed as [`Body`](ClientEvent::Body) pieces borrowed from the receive buffer,
//! never buffered whole.

use alloc::{collections::VecDeque, string::String, vec::Vec};
use core::{fmt, ops::Range, time::Duration};

use crate::{
    Command,
    dot::{DotUnstuffer, Unstuffed},
    response::{
        self, Capability, Expire, Greeting, Status, parse_continuation, parse_decimal, parse_pair,
    },
    sasl::{self, ClientLine, FirstMessage, Mechanism, SaslClient, SaslError},
};

/// Client settings. Every default is commented.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Longest status, CAPA or listing line accepted (default 8 KiB: lenient against RFC
    /// 2449's 512, bounded all the same, ROB-6). Message body lines have no limit: they are
    /// streamed.
    pub status_line_limit: usize,
    /// How long the server may stay silent while a reply is due (default 180 s, mpop's
    /// default).
    pub reply_timeout: Duration,
    /// Commands in flight at once when the server supports PIPELINING (default 32).
    pub pipelining_window: usize,
    /// Send USER/PASS and plaintext SASL mechanisms over a link not marked secure (default
    /// `false`; RFC 8314 §5).
    pub allow_plaintext_without_tls: bool,
    /// Use APOP over a link not marked secure (default `false`: APOP's MD5 is weak,
    /// CVE-2007-1558, R1939-APOP-7).
    pub allow_apop_without_tls: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            status_line_limit: 8 * 1024,
            reply_timeout: Duration::from_secs(180),
            pipelining_window: 32,
            allow_plaintext_without_tls: false,
            allow_apop_without_tls: false,
        }
    }
}

impl ClientConfig {
    /// The defaults documented on each field.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Identifies a command; every reply event carries the handle of its command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandHandle(u64);

/// What the server announced in CAPA (RFC 2449 §5). Dropped after STLS (R2595-STLS-9).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `TOP`
    pub top: bool,
    /// `USER`
    pub user: bool,
    /// `UIDL`
    pub uidl: bool,
    /// `PIPELINING`
    pub pipelining: bool,
    /// `RESP-CODES`
    pub resp_codes: bool,
    /// `AUTH-RESP-CODE`: only `[AUTH]` means "wrong credentials" (RFC 3206 §6).
    pub auth_resp_code: bool,
    /// `STLS`
    pub stls: bool,
    /// `UTF8`, with whether `USER` was given.
    pub utf8: Option<bool>,
    /// `LANG`
    pub lang: bool,
    /// `SASL`: the mechanisms this crate knows, in the server's order; the full text is in
    /// `sasl_text`.
    pub sasl: Vec<Mechanism>,
    /// The `SASL` line's arguments as sent.
    pub sasl_text: String,
    /// `LOGIN-DELAY` seconds.
    pub login_delay: Option<u32>,
    /// `EXPIRE`.
    pub expire: Option<Expire>,
    /// `IMPLEMENTATION` (never acted upon, R2449-IMPL-2).
    pub implementation: Option<String>,
}

impl Capabilities {
    fn add(&mut self, cap: Capability<'_>) {
        match cap {
            Capability::Top => self.top = true,
            Capability::User => self.user = true,
            Capability::Uidl => self.uidl = true,
            Capability::Pipelining => self.pipelining = true,
            Capability::RespCodes => self.resp_codes = true,
            Capability::AuthRespCode => self.auth_resp_code = true,
            Capability::Stls => self.stls = true,
            Capability::Utf8 { user } => self.utf8 = Some(user),
            Capability::Lang => self.lang = true,
            Capability::Sasl(list) => {
                self.sasl_text = String::from(list);
                self.sasl = list.split(' ').filter_map(Mechanism::from_name).collect();
            }
            Capability::LoginDelay { seconds, .. } => self.login_delay = Some(seconds),
            Capability::Expire { policy, .. } => self.expire = Some(policy),
            Capability::Implementation(text) => self.implementation = Some(String::from(text)),
            _ => {}
        }
    }
}

/// Why the connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientCloseReason {
    /// The server answered QUIT.
    Quit,
    /// The server closed the connection. If replies were outstanding they will not come:
    /// a RETR without its `End` is incomplete, DELEs without a QUIT reply are not committed.
    PeerClosed,
    /// The server sent a `-ERR` greeting (overload, maintenance: try later, ROB-9).
    GreetingRejected,
    /// No reply within [`ClientConfig::reply_timeout`].
    Timeout,
    /// The server broke the protocol.
    Protocol(ProtocolError),
    /// The server accepted a SASL login it could not prove it knew the password for
    /// (SCRAM server signature missing or wrong, R5802-7), or the mechanism failed.
    ServerNotAuthenticated(SaslError),
}

impl fmt::Display for ClientCloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Quit => f.write_str("quit"),
            Self::PeerClosed => f.write_str("connection closed by the server"),
            Self::GreetingRejected => f.write_str("the server refused the connection"),
            Self::Timeout => f.write_str("the server did not answer in time"),
            Self::Protocol(e) => write!(f, "protocol error: {e}"),
            Self::ServerNotAuthenticated(e) => {
                write!(f, "the server could not be authenticated: {e}")
            }
        }
    }
}

/// A protocol violation by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A line that is neither `+OK` nor `-ERR` where a status was due.
    MalformedStatus,
    /// A status or listing line longer than [`ClientConfig::status_line_limit`].
    LineTooLong,
    /// A STAT, LIST or UIDL reply without its numbers.
    MalformedListing,
    /// A `+ ` continuation outside a SASL exchange.
    UnexpectedContinuation,
    /// Bytes after the `+OK` to STLS, before the handshake (response injection, R2595-STLS-8).
    DataAfterStls,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MalformedStatus => "malformed status line",
            Self::LineTooLong => "line too long",
            Self::MalformedListing => "malformed STAT, LIST or UIDL reply",
            Self::UnexpectedContinuation => "continuation line outside AUTH",
            Self::DataAfterStls => "data after the STLS reply before TLS",
        })
    }
}

/// A call that does not fit: the command was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The connection is closed.
    Closed,
    /// The command sends a password or token over a link not marked secure, and
    /// [`ClientConfig::allow_plaintext_without_tls`] is off.
    InsecureCredentials,
    /// APOP needs a valid timestamp in the greeting (R1939-APOP-7/8), and TLS unless
    /// [`ClientConfig::allow_apop_without_tls`].
    ApopUnavailable,
    /// `AUTH mech` goes through [`ClientConnection::authenticate`], which runs the exchange.
    UseAuthenticate,
    /// STLS over a link that is already secure, or after UTF8 (RFC 6856 §2.1).
    StlsNotAllowed,
    /// No STLS reply is awaiting its handshake.
    NotPending,
    /// The command line would exceed 255 octets (RFC 2449 §4); use SASL for long names.
    CommandTooLong,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Closed => "the connection is closed",
            Self::InsecureCredentials => "refusing to send credentials without TLS",
            Self::ApopUnavailable => "APOP is not available on this connection",
            Self::UseAuthenticate => "use authenticate() for AUTH",
            Self::StlsNotAllowed => "STLS is not allowed now",
            Self::NotPending => "no TLS handshake is pending",
            Self::CommandTooLong => "command longer than 255 octets",
        })
    }
}

impl core::error::Error for ClientError {}

/// What the client machine reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientEvent<'a> {
    /// The greeting (its APOP timestamp, if any, is kept for [`ClientConnection::apop`]).
    Greeting(Greeting<'a>),
    /// A status line. `more` is true when lines of a multi-line reply follow (then
    /// [`ClientEvent::End`] closes it).
    Status {
        /// The command.
        handle: CommandHandle,
        /// The status line.
        status: Status<'a>,
        /// Lines follow.
        more: bool,
    },
    /// `+OK` to STAT.
    Stat {
        /// The command.
        handle: CommandHandle,
        /// Messages in the maildrop (deleted ones excluded).
        messages: u64,
        /// Their total size.
        octets: u64,
    },
    /// A scan listing: the `+OK` to `LIST n`, or one line of `LIST`.
    Scan {
        /// The command.
        handle: CommandHandle,
        /// The message number.
        message: u32,
        /// The size the server announces (never trusted for framing, R1939-LIST-7).
        octets: u64,
    },
    /// A unique-id listing: the `+OK` to `UIDL n`, or one line of `UIDL`. The id is
    /// opaque and case-sensitive (R1939-UIDL-10); ids that break the 70-octet rule are
    /// passed on as they are (Q-2).
    UniqueId {
        /// The command.
        handle: CommandHandle,
        /// The message number.
        message: u32,
        /// The unique id.
        uid: &'a [u8],
    },
    /// One CAPA line (also folded into [`ClientConnection::capabilities`]).
    Capability {
        /// The command.
        handle: CommandHandle,
        /// The capability.
        capability: Capability<'a>,
    },
    /// A line of another multi-line reply (`LANG`, bare `AUTH`), dot-unstuffed.
    Line {
        /// The command.
        handle: CommandHandle,
        /// The line without its terminator.
        line: &'a [u8],
    },
    /// A piece of a RETR/TOP body, dot-unstuffed, line ends as the server sent them.
    Body {
        /// The command.
        handle: CommandHandle,
        /// The data.
        data: &'a [u8],
    },
    /// The end of a multi-line reply.
    End {
        /// The command.
        handle: CommandHandle,
    },
    /// The server accepted STLS: run the TLS handshake, then call
    /// [`ClientConnection::tls_established`].
    StartTls,
    /// The session is over.
    Closed(ClientCloseReason),
}

/// How a command's reply is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    Single,
    Stat,
    ScanOne,
    UidOne,
    ScanList,
    UidList,
    Capa,
    Lines,
    Body,
    Login,
    Auth,
    Stls,
    Quit,
}

impl Reply {
    fn of(cmd: &Command<'_>) -> Self {
        match cmd {
            Command::Stat => Self::Stat,
            Command::List(Some(_)) => Self::ScanOne,
            Command::Uidl(Some(_)) => Self::UidOne,
            Command::List(None) => Self::ScanList,
            Command::Uidl(None) => Self::UidList,
            Command::Capa => Self::Capa,
            Command::Lang(None) | Command::AuthList => Self::Lines,
            Command::Retr(_) | Command::Top { .. } => Self::Body,
            Command::Pass(_) | Command::Apop { .. } => Self::Login,
            Command::Auth { .. } => Self::Auth,
            Command::Stls => Self::Stls,
            Command::Quit => Self::Quit,
            _ => Self::Single,
        }
    }

    /// Sent alone, never pipelined with anything.
    fn is_exclusive(self) -> bool {
        matches!(self, Self::Auth | Self::Stls)
    }
}

/// Where the reader is within the reply at the head of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the status line.
    Status,
    /// Reading lines of a multi-line listing.
    Lines,
    /// Streaming a body.
    Body,
}

#[derive(Debug, Clone, Copy)]
struct Outstanding {
    handle: CommandHandle,
    reply: Reply,
}

/// An event decided, kept as ranges into `input` so `poll_event` can borrow.
#[derive(Debug, Clone)]
enum Pending {
    Greeting(Range<usize>),
    Status {
        handle: CommandHandle,
        line: Range<usize>,
        more: bool,
    },
    Stat {
        handle: CommandHandle,
        messages: u64,
        octets: u64,
    },
    Scan {
        handle: CommandHandle,
        message: u32,
        octets: u64,
    },
    UniqueId {
        handle: CommandHandle,
        message: u32,
        uid: Range<usize>,
    },
    Capability {
        handle: CommandHandle,
        line: Range<usize>,
    },
    Line {
        handle: CommandHandle,
        line: Range<usize>,
    },
    Body {
        handle: CommandHandle,
        data: Range<usize>,
    },
    /// A lone `\r` the unstuffer held across chunks.
    BodyCr(CommandHandle),
    End(CommandHandle),
    StartTls,
    Closed(ClientCloseReason),
}

/// A POP3 client session: commands in, bytes out; bytes in, events out; time passed in.
///
/// ```
/// use std::time::Duration;
/// use pop3_proto::{Command, client::{ClientConfig, ClientConnection, ClientEvent}};
///
/// let mut c = ClientConnection::new(ClientConfig::new(), Duration::ZERO);
/// let stat = c.send(Duration::ZERO, Command::Stat).unwrap();
/// c.receive(Duration::ZERO, b"+OK ready\r\n+OK 2 320\r\n");
/// let mut events = Vec::new();
/// while let Some(e) = c.poll_event() {
///     events.push(format!("{e:?}"));
/// }
/// assert_eq!(events.len(), 2);
/// assert!(events[1].starts_with("Stat") && events[1].contains("messages: 2, octets: 320"));
/// let mut wire = Vec::new();
/// let _ = c.poll_transmit(&mut wire);
/// assert_eq!(wire, b"STAT\r\n");
/// # let _ = stat;
/// ```
#[derive(Debug)]
pub struct ClientConnection {
    config: ClientConfig,
    input: Vec<u8>,
    /// First unconsumed byte of `input`.
    start: usize,
    /// Bytes the last event borrowed; consumed on the next call.
    held: usize,
    out: Vec<u8>,
    /// Commands encoded but not yet released to `out` (window full, or behind an exclusive
    /// command), with their reply kinds.
    queued_bytes: Vec<u8>,
    queued: VecDeque<(Outstanding, usize)>,
    in_flight: VecDeque<Outstanding>,
    phase: Phase,
    greeted: bool,
    timestamp: Option<Vec<u8>>,
    capabilities: Option<Capabilities>,
    building_capabilities: Option<Capabilities>,
    unstuffer: DotUnstuffer,
    sasl: Option<SaslClient>,
    /// An initial response too long for the AUTH line, sent after the first challenge.
    sasl_deferred: Option<Vec<u8>>,
    sasl_error: Option<SaslError>,
    pending: Option<Pending>,
    /// An event that follows `pending` (StartTls after the STLS reply, Closed after QUIT).
    follow_up: Option<Pending>,
    next_handle: u64,
    secure: bool,
    utf8: bool,
    logged_in: bool,
    tls_pending: bool,
    eof: bool,
    closed: bool,
    deadline: Option<Duration>,
}

impl ClientConnection {
    /// A session on a fresh connection; the greeting is awaited (within the reply timeout).
    pub fn new(config: ClientConfig, now: Duration) -> Self {
        let deadline = Some(now.saturating_add(config.reply_timeout));
        Self {
            config,
            input: Vec::new(),
            start: 0,
            held: 0,
            out: Vec::new(),
            queued_bytes: Vec::new(),
            queued: VecDeque::new(),
            in_flight: VecDeque::new(),
            phase: Phase::Status,
            greeted: false,
            timestamp: None,
            capabilities: None,
            building_capabilities: None,
            unstuffer: DotUnstuffer::new(),
            sasl: None,
            sasl_deferred: None,
            sasl_error: None,
            pending: None,
            follow_up: None,
            next_handle: 0,
            secure: false,
            utf8: false,
            logged_in: false,
            tls_pending: false,
            eof: false,
            closed: false,
            deadline,
        }
    }

    /// Marks the link as protected by TLS from the start (implicit TLS, port 995).
    pub fn set_secure(&mut self) {
        self.secure = true;
    }

    // ---- getters -------------------------------------------------------------------

    /// The capabilities from the last CAPA reply, if any (dropped after STLS).
    pub const fn capabilities(&self) -> Option<&Capabilities> {
        self.capabilities.as_ref()
    }

    /// The greeting's APOP timestamp, if it had a valid one.
    pub fn apop_timestamp(&self) -> Option<&[u8]> {
        self.timestamp.as_deref()
    }

    /// True once a login succeeded.
    pub const fn is_logged_in(&self) -> bool {
        self.logged_in
    }

    /// True when the link is marked secure.
    pub const fn is_secure(&self) -> bool {
        self.secure
    }

    /// True once the session is over.
    pub const fn is_closed(&self) -> bool {
        self.closed
    }

    /// False while closed or waiting for the TLS handshake.
    pub const fn wants_read(&self) -> bool {
        !self.closed && !self.tls_pending && !self.eof
    }

    /// Commands sent and not yet fully answered, plus those queued behind them.
    pub fn outstanding(&self) -> usize {
        self.in_flight.len() + self.queued.len()
    }

    // ---- commands ------------------------------------------------------------------

    /// Queues a command. USER and PASS need a secure link unless plaintext is allowed;
    /// `AUTH mech` goes through [`authenticate`](Self::authenticate).
    pub fn send(
        &mut self,
        now: Duration,
        command: Command<'_>,
    ) -> Result<CommandHandle, ClientError> {
        if self.closed {
            return Err(ClientError::Closed);
        }
        match command {
            Command::User(_) | Command::Pass(_)
                if !self.secure && !self.config.allow_plaintext_without_tls =>
            {
                return Err(ClientError::InsecureCredentials);
            }
            Command::Apop { .. } if !self.apop_allowed() => {
                return Err(ClientError::ApopUnavailable);
            }
            Command::Auth { .. } => return Err(ClientError::UseAuthenticate),
            Command::Stls if self.secure || self.utf8 => return Err(ClientError::StlsNotAllowed),
            Command::Utf8 => self.utf8 = true,
            _ => {}
        }
        // R2449-LEN-4: no command line over 255 octets (AUTH defers long data instead).
        let mut line = Vec::new();
        command.encode(&mut line);
        if line.len() > 255 {
            return Err(ClientError::CommandTooLong);
        }
        Ok(self.enqueue(now, Reply::of(&command), |out| out.extend_from_slice(&line)))
    }

    /// Logs in with APOP (RFC 1939 §7) using the greeting's timestamp.
    pub fn apop(
        &mut self,
        now: Duration,
        user: &str,
        secret: &[u8],
    ) -> Result<CommandHandle, ClientError> {
        let Some(timestamp) = self.timestamp.as_deref().filter(|_| self.apop_allowed()) else {
            return Err(ClientError::ApopUnavailable);
        };
        let digest = crate::apop::digest(timestamp, secret);
        let digest = core::str::from_utf8(&digest).map_err(|_| ClientError::ApopUnavailable)?;
        let command = Command::Apop { name: user, digest };
        Ok(self.enqueue(now, Reply::Login, |out| command.encode(out)))
    }

    /// Asks for TLS (RFC 2595). After [`ClientEvent::StartTls`], run the handshake and call
    /// [`tls_established`](Self::tls_established).
    pub fn stls(&mut self, now: Duration) -> Result<CommandHandle, ClientError> {
        self.send(now, Command::Stls)
    }

    /// The TLS handshake after STLS succeeded: the link is secure, and capabilities learned
    /// before are forgotten (R2595-STLS-9); send CAPA again.
    pub fn tls_established(&mut self) -> Result<(), ClientError> {
        if !self.tls_pending {
            return Err(ClientError::NotPending);
        }
        self.tls_pending = false;
        self.secure = true;
        self.capabilities = None;
        self.release_queued();
        Ok(())
    }

    /// Runs a SASL exchange (RFC 5034). The initial response is sent on the AUTH line when
    /// the server announced SASL in CAPA and the line fits in 255 octets; otherwise after the
    /// server's first (empty) challenge (R5034-AUTH-7, R5034-CAP-2).
    pub fn authenticate(
        &mut self,
        now: Duration,
        mut mechanism: SaslClient,
    ) -> Result<CommandHandle, ClientError> {
        if self.closed {
            return Err(ClientError::Closed);
        }
        let mech = mechanism.mechanism();
        if mech.sends_plaintext_secret() && !self.secure && !self.config.allow_plaintext_without_tls
        {
            return Err(ClientError::InsecureCredentials);
        }
        let announced = self
            .capabilities
            .as_ref()
            .is_some_and(|c| !c.sasl_text.is_empty());
        let initial = match mech.first_message() {
            FirstMessage::Client if announced => mechanism.initial_response(),
            _ => None,
        };
        let mut ir_text = Vec::new();
        if let Some(ir) = &initial {
            if ir.is_empty() {
                ir_text.push(b'=');
            } else {
                sasl::encode_base64(ir, &mut ir_text);
            }
        }
        // "AUTH " + name + " " + ir + CRLF must fit 255 octets.
        let inline = !ir_text.is_empty() && 5 + mech.name().len() + 1 + ir_text.len() + 2 <= 255;
        self.sasl_deferred = if inline { None } else { initial };
        self.sasl = Some(mechanism);
        self.sasl_error = None;
        let command = Command::Auth {
            mechanism: mech.name(),
            initial_response: inline.then(|| crate::Secret::new(&ir_text[..])),
        };
        Ok(self.enqueue(now, Reply::Auth, |out| command.encode(out)))
    }

    fn apop_allowed(&self) -> bool {
        self.timestamp.is_some() && (self.secure || self.config.allow_apop_without_tls)
    }

    fn enqueue(
        &mut self,
        now: Duration,
        reply: Reply,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> CommandHandle {
        let handle = CommandHandle(self.next_handle);
        self.next_handle += 1;
        let before = self.queued_bytes.len();
        encode(&mut self.queued_bytes);
        let len = self.queued_bytes.len() - before;
        self.queued.push_back((Outstanding { handle, reply }, len));
        if self.in_flight.is_empty() {
            self.deadline = Some(now.saturating_add(self.config.reply_timeout));
        }
        self.release_queued();
        handle
    }

    /// Moves queued commands to the output as far as the pipelining rules allow.
    fn release_queued(&mut self) {
        let mut released = 0;
        while let Some(&(next, len)) = self.queued.front() {
            if !self.may_send(next.reply) {
                break;
            }
            self.queued.pop_front();
            self.out
                .extend_from_slice(&self.queued_bytes[released..released + len]);
            released += len;
            self.in_flight.push_back(next);
        }
        if released > 0 {
            self.queued_bytes.drain(..released);
        }
    }

    fn may_send(&self, reply: Reply) -> bool {
        if !self.greeted || self.tls_pending || self.closed {
            return false;
        }
        let Some(last) = self.in_flight.back() else {
            return true;
        };
        let pipelining = self.capabilities.as_ref().is_some_and(|c| c.pipelining);
        pipelining
            && !reply.is_exclusive()
            && !last.reply.is_exclusive()
            && !matches!(last.reply, Reply::Capa | Reply::Quit)
            && self.in_flight.len() < self.config.pipelining_window.max(1)
    }

    // ---- input ---------------------------------------------------------------------

    /// Feeds bytes received from the server.
    pub fn receive(&mut self, now: Duration, bytes: &[u8]) {
        self.consume_held();
        if self.closed || self.tls_pending {
            return;
        }
        if !self.in_flight.is_empty() || !self.greeted {
            self.deadline = Some(now.saturating_add(self.config.reply_timeout));
        }
        if self.start > 0 && self.start == self.input.len() {
            self.input.clear();
            self.start = 0;
        } else if self.start > self.input.len() / 2 {
            self.input.drain(..self.start);
            self.start = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// The server closed the connection.
    pub fn receive_eof(&mut self, _now: Duration) {
        self.eof = true;
    }

    // ---- time ----------------------------------------------------------------------

    /// When to call [`handle_timeout`](Self::handle_timeout): only while a reply is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        if self.closed || (self.greeted && self.in_flight.is_empty()) || self.tls_pending {
            None
        } else {
            self.deadline
        }
    }

    /// Advances time: a server silent for [`ClientConfig::reply_timeout`] while a reply is
    /// due closes the session. Early or repeated calls do nothing.
    pub fn handle_timeout(&mut self, now: Duration) {
        if let Some(deadline) = self.poll_timeout()
            && now >= deadline
            && self.pending.is_none()
        {
            self.close(ClientCloseReason::Timeout);
        }
    }

    // ---- output --------------------------------------------------------------------

    /// Appends bytes to send to `out`; returns how many.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.out.len();
        if out.is_empty() {
            core::mem::swap(out, &mut self.out);
        } else {
            out.extend_from_slice(&self.out);
            self.out.clear();
        }
        n
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent<'_>> {
        self.consume_held();
        if self.pending.is_none() && !self.closed {
            self.process();
        }
        let pending = self.pending.take().or_else(|| self.follow_up.take())?;
        let input = &self.input[..];
        let slice = |r: Range<usize>| input.get(r).unwrap_or_default();
        Some(match pending {
            Pending::Greeting(line) => {
                ClientEvent::Greeting(Greeting::parse(slice(line)).unwrap_or(Greeting {
                    status: Status::err(b""),
                    timestamp: None,
                }))
            }
            Pending::Status { handle, line, more } => ClientEvent::Status {
                handle,
                status: Status::parse(slice(line)).unwrap_or(Status::err(b"")),
                more,
            },
            Pending::Stat {
                handle,
                messages,
                octets,
            } => ClientEvent::Stat {
                handle,
                messages,
                octets,
            },
            Pending::Scan {
                handle,
                message,
                octets,
            } => ClientEvent::Scan {
                handle,
                message,
                octets,
            },
            Pending::UniqueId {
                handle,
                message,
                uid,
            } => ClientEvent::UniqueId {
                handle,
                message,
                uid: slice(uid),
            },
            Pending::Capability { handle, line } => ClientEvent::Capability {
                handle,
                capability: Capability::parse(slice(line))
                    .unwrap_or(Capability::Other { tag: "", args: "" }),
            },
            Pending::Line { handle, line } => ClientEvent::Line {
                handle,
                line: slice(line),
            },
            Pending::Body { handle, data } => ClientEvent::Body {
                handle,
                data: slice(data),
            },
            Pending::BodyCr(handle) => ClientEvent::Body {
                handle,
                data: b"\r",
            },
            Pending::End(handle) => ClientEvent::End { handle },
            Pending::StartTls => ClientEvent::StartTls,
            Pending::Closed(reason) => {
                self.closed = true;
                ClientEvent::Closed(reason)
            }
        })
    }

    // ---- internals -----------------------------------------------------------------

    fn consume_held(&mut self) {
        self.start += self.held;
        self.held = 0;
    }

    fn close(&mut self, reason: ClientCloseReason) {
        self.pending = Some(Pending::Closed(reason));
        self.in_flight.clear();
        self.queued.clear();
        self.queued_bytes.clear();
        self.sasl = None;
        self.sasl_deferred = None;
        self.deadline = None;
    }

    /// Reads input until an event is decided or more input is needed.
    fn process(&mut self) {
        while self.pending.is_none() && self.follow_up.is_none() && !self.closed {
            let progressed = match self.phase {
                Phase::Body => self.body(),
                Phase::Status | Phase::Lines => self.line(),
            };
            if !progressed {
                if self.eof && self.pending.is_none() {
                    self.close(ClientCloseReason::PeerClosed);
                }
                return;
            }
        }
    }

    /// The next complete line as (content range, length with terminator), or a protocol
    /// error when the status-line limit is exceeded.
    fn next_line(&mut self) -> Option<(Range<usize>, usize)> {
        let rest = &self.input[self.start..];
        let Some(lf) = memchr::memchr(b'\n', rest) else {
            if rest.len() > self.config.status_line_limit {
                self.close(ClientCloseReason::Protocol(ProtocolError::LineTooLong));
            }
            return None;
        };
        if lf + 1 > self.config.status_line_limit {
            self.close(ClientCloseReason::Protocol(ProtocolError::LineTooLong));
            return None;
        }
        let end = if lf > 0 && rest[lf - 1] == b'\r' {
            lf - 1
        } else {
            lf
        };
        Some((self.start..self.start + end, lf + 1))
    }

    fn line(&mut self) -> bool {
        let Some((range, len)) = self.next_line() else {
            return false;
        };
        if !self.greeted {
            self.greeting(range, len);
            return true;
        }
        let Some(&current) = self.in_flight.front() else {
            // Unsolicited (e.g. an autologout notice before the server closes, R1939-TMR-4):
            // nothing waits for it.
            self.start += len;
            return true;
        };
        if self.phase == Phase::Lines {
            self.listing_line(current, range, len);
        } else {
            self.status_line(current, range, len);
        }
        true
    }

    fn greeting(&mut self, range: Range<usize>, len: usize) {
        match Greeting::parse(&self.input[range.clone()]) {
            Ok(g) => {
                self.greeted = true;
                self.timestamp = g.timestamp.map(<[u8]>::to_vec);
                let ok = g.status.is_ok();
                self.pending = Some(Pending::Greeting(range));
                self.held = len;
                if ok {
                    self.release_queued();
                    if self.in_flight.is_empty() {
                        self.deadline = None;
                    }
                } else {
                    self.follow_up = Some(Pending::Closed(ClientCloseReason::GreetingRejected));
                }
            }
            Err(_) => self.close(ClientCloseReason::Protocol(ProtocolError::MalformedStatus)),
        }
    }

    fn finish_command(&mut self) {
        self.in_flight.pop_front();
        self.phase = Phase::Status;
        self.release_queued();
    }

    fn status_line(&mut self, current: Outstanding, range: Range<usize>, len: usize) {
        let line = &self.input[range.clone()];
        if let Some(challenge) = parse_continuation(line) {
            if current.reply != Reply::Auth {
                self.close(ClientCloseReason::Protocol(
                    ProtocolError::UnexpectedContinuation,
                ));
                return;
            }
            let challenge = challenge.to_vec();
            self.start += len;
            self.sasl_step(&challenge);
            return;
        }
        let Ok(status) = Status::parse(line) else {
            self.close(ClientCloseReason::Protocol(ProtocolError::MalformedStatus));
            return;
        };
        let handle = current.handle;
        if !status.is_ok() {
            if current.reply == Reply::Auth {
                self.sasl = None;
                self.sasl_deferred = None;
            }
            self.pending = Some(Pending::Status {
                handle,
                line: range,
                more: false,
            });
            self.held = len;
            self.finish_command();
            return;
        }
        let text = status.text;
        let typed = match current.reply {
            Reply::Stat => parse_pair(text)
                .and_then(|(n, o)| Ok((parse_decimal(n)?, parse_decimal(o)?)))
                .map(|(messages, octets)| Pending::Stat {
                    handle,
                    messages,
                    octets,
                }),
            Reply::ScanOne => parse_scan(text).map(|(message, octets)| Pending::Scan {
                handle,
                message,
                octets,
            }),
            Reply::UidOne => parse_pair(text).and_then(|(n, uid)| {
                let start = uid.as_ptr() as usize - self.input.as_ptr() as usize;
                Ok(Pending::UniqueId {
                    handle,
                    message: parse_message_number(n)?,
                    uid: start..start + uid.len(),
                })
            }),
            _ => Ok(Pending::Status {
                handle,
                line: range,
                more: matches!(
                    current.reply,
                    Reply::ScanList | Reply::UidList | Reply::Capa | Reply::Lines | Reply::Body
                ),
            }),
        };
        let Ok(pending) = typed else {
            self.close(ClientCloseReason::Protocol(ProtocolError::MalformedListing));
            return;
        };
        self.pending = Some(pending);
        self.held = len;
        match current.reply {
            Reply::ScanList | Reply::UidList | Reply::Lines => self.phase = Phase::Lines,
            Reply::Capa => {
                self.phase = Phase::Lines;
                self.building_capabilities = Some(Capabilities::default());
            }
            Reply::Body => {
                self.phase = Phase::Body;
                self.unstuffer = DotUnstuffer::new();
            }
            Reply::Login => {
                self.logged_in = true;
                self.finish_command();
            }
            Reply::Auth => {
                let verdict = self.sasl.take().map_or(Ok(()), |m| m.finish());
                let verdict = match self.sasl_error.take() {
                    Some(e) => Err(e),
                    None => verdict,
                };
                if let Err(e) = verdict {
                    self.pending = None;
                    self.held = 0;
                    self.close(ClientCloseReason::ServerNotAuthenticated(e));
                    return;
                }
                self.logged_in = true;
                self.finish_command();
            }
            Reply::Stls => {
                // Set first: nothing queued may go out before the handshake (R2595-STLS-6).
                self.tls_pending = true;
                self.finish_command();
                // Nothing may follow the STLS reply in plaintext (R2595-STLS-8).
                if self.input.len() > self.start + len {
                    self.pending = None;
                    self.held = 0;
                    self.close(ClientCloseReason::Protocol(ProtocolError::DataAfterStls));
                    return;
                }
                // The Status event goes first; StartTls follows it.
                self.follow_up = Some(Pending::StartTls);
            }
            Reply::Quit => {
                self.finish_command();
                self.follow_up = Some(Pending::Closed(ClientCloseReason::Quit));
            }
            _ => self.finish_command(),
        }
    }

    fn listing_line(&mut self, current: Outstanding, range: Range<usize>, len: usize) {
        let handle = current.handle;
        let line = &self.input[range.clone()];
        if line == b"." {
            if current.reply == Reply::Capa {
                self.capabilities = self.building_capabilities.take();
            }
            self.start += len;
            self.pending = Some(Pending::End(handle));
            self.finish_command();
            return;
        }
        // Un-stuff: a line starting with '.' loses its first dot (RFC 1939 §3).
        let range = if line.first() == Some(&b'.') {
            range.start + 1..range.end
        } else {
            range
        };
        let line = &self.input[range.clone()];
        let pending = match current.reply {
            Reply::ScanList => parse_scan(line).map(|(message, octets)| Pending::Scan {
                handle,
                message,
                octets,
            }),
            Reply::UidList => parse_pair(line).and_then(|(n, uid)| {
                let start = uid.as_ptr() as usize - self.input.as_ptr() as usize;
                Ok(Pending::UniqueId {
                    handle,
                    message: parse_message_number(n)?,
                    uid: start..start + uid.len(),
                })
            }),
            Reply::Capa => match Capability::parse(line) {
                Ok(cap) => {
                    if let Some(caps) = &mut self.building_capabilities {
                        caps.add(cap);
                    }
                    Ok(Pending::Capability {
                        handle,
                        line: range,
                    })
                }
                // An unparsable CAPA line is skipped, never fatal (IANA-2).
                Err(_) => {
                    self.start += len;
                    return;
                }
            },
            _ => Ok(Pending::Line {
                handle,
                line: range,
            }),
        };
        match pending {
            Ok(p) => {
                self.pending = Some(p);
                self.held = len;
            }
            Err(_) => self.close(ClientCloseReason::Protocol(ProtocolError::MalformedListing)),
        }
    }

    fn body(&mut self) -> bool {
        let Some(&current) = self.in_flight.front() else {
            self.phase = Phase::Status;
            return true;
        };
        let input = &self.input[self.start..];
        if input.is_empty() {
            return false;
        }
        let base = self.input.as_ptr() as usize;
        let (consumed, piece) = self.unstuffer.next(input);
        match piece {
            None => {
                self.start += consumed;
                consumed > 0
            }
            Some(Unstuffed::End) => {
                self.start += consumed;
                self.pending = Some(Pending::End(current.handle));
                self.finish_command();
                true
            }
            Some(Unstuffed::Data(data)) => {
                let offset = (data.as_ptr() as usize).wrapping_sub(base);
                self.pending = Some(if offset < self.input.len() {
                    Pending::Body {
                        handle: current.handle,
                        data: offset..offset + data.len(),
                    }
                } else {
                    // The unstuffer's own held-over byte, not a slice of the input.
                    Pending::BodyCr(current.handle)
                });
                self.held = consumed;
                true
            }
        }
    }

    /// Answers a SASL challenge (still base64-encoded).
    fn sasl_step(&mut self, challenge: &[u8]) {
        let mut decoded = Vec::new();
        let answer = match sasl::decode_client_line(challenge, &mut decoded) {
            // `*` is not a challenge; treat as undecodable (R5034-AUTH-11).
            Ok(ClientLine::Cancel) | Err(_) => Err(SaslError::InvalidBase64),
            Ok(ClientLine::Data) => match self.sasl_deferred.take() {
                Some(initial) if decoded.is_empty() => Ok(initial),
                _ => match &mut self.sasl {
                    Some(m) => m.respond(&decoded),
                    None => Err(SaslError::InvalidBase64),
                },
            },
        };
        match answer {
            Ok(response) => {
                sasl::encode_base64(&response, &mut self.out);
                self.out.extend_from_slice(b"\r\n");
            }
            Err(e) => {
                // Cancel; the server answers -ERR, which ends the exchange.
                self.sasl_error = Some(e);
                self.out.extend_from_slice(b"*\r\n");
            }
        }
    }
}

/// `msg SP size`
fn parse_scan(text: &[u8]) -> Result<(u32, u64), response::ResponseError> {
    let (n, size) = parse_pair(text)?;
    Ok((parse_message_number(n)?, parse_decimal(size)?))
}

fn parse_message_number(field: &[u8]) -> Result<u32, response::ResponseError> {
    u32::try_from(parse_decimal(field)?).map_err(|_| response::ResponseError::InvalidListing)
}

impl crate::Connection for ClientConnection {
    type Event<'a> = ClientEvent<'a>;

    fn receive(&mut self, now: Duration, bytes: &[u8]) {
        Self::receive(self, now, bytes);
    }

    fn receive_eof(&mut self, now: Duration) {
        Self::receive_eof(self, now);
    }

    fn poll_event(&mut self) -> Option<ClientEvent<'_>> {
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

/// A command's reply gathered into owned values: what a blocking or async client API
/// returns. Bodies are not gathered (they stream); `feed` hands their pieces back.
///
/// Every adapter uses this, so the rules for turning events into results live in one place.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Collected {
    /// The status text of the first line (empty for typed single-line replies).
    pub text: Vec<u8>,
    /// `STAT`: messages and octets.
    pub stat: Option<(u64, u64)>,
    /// `LIST` entries (one for `LIST n`).
    pub scans: Vec<(u32, u64)>,
    /// `UIDL` entries (one for `UIDL n`).
    pub uids: Vec<(u32, Vec<u8>)>,
    /// Other multi-line reply lines (`LANG`, bare `AUTH`); CAPA lines are in
    /// [`ClientConnection::capabilities`].
    pub lines: Vec<Vec<u8>>,
}

/// A `-ERR` reply, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrReply {
    /// The response code, if any (e.g. `IN-USE`, `SYS/TEMP`, `AUTH`).
    pub code: Option<String>,
    /// The text after the code.
    pub text: String,
}

impl ErrReply {
    /// The known code this reply carries.
    pub fn known(&self) -> Option<response::KnownCode> {
        response::ResponseCode::new(self.code.as_deref()?)
            .ok()?
            .known()
    }
}

impl fmt::Display for ErrReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "-ERR [{code}] {}", self.text),
            None => write!(f, "-ERR {}", self.text),
        }
    }
}

/// Where a reply stands after an event.
#[derive(Debug)]
pub enum ReplyProgress<'a> {
    /// The event was not for this command, or more is to come.
    Pending,
    /// A piece of the body (RETR/TOP) to write out.
    Body(&'a [u8]),
    /// The reply is complete.
    Done(Result<Collected, ErrReply>),
    /// The connection closed before the reply was complete.
    Closed(ClientCloseReason),
}

/// Gathers the events of one command ([`CommandHandle`]) into a [`Collected`] result.
#[derive(Debug)]
pub struct Collector {
    handle: CommandHandle,
    result: Collected,
    /// A multi-line `+OK` arrived: entries follow until `End`.
    started: bool,
}

impl Collector {
    /// Gathers the reply to `handle`.
    pub fn new(handle: CommandHandle) -> Self {
        Self {
            handle,
            result: Collected::default(),
            started: false,
        }
    }

    /// Feeds one event (events for other commands pass through as `Pending`).
    pub fn feed<'a>(&mut self, event: ClientEvent<'a>) -> ReplyProgress<'a> {
        let mine = |h: CommandHandle| h == self.handle;
        match event {
            ClientEvent::Status {
                handle,
                status,
                more,
            } if mine(handle) => {
                if !status.is_ok() {
                    return ReplyProgress::Done(Err(ErrReply {
                        code: status.code.map(|c| String::from(c.as_str())),
                        text: String::from_utf8_lossy(status.text).into_owned(),
                    }));
                }
                self.result.text = status.text.to_vec();
                if more {
                    self.started = true;
                    ReplyProgress::Pending
                } else {
                    ReplyProgress::Done(Ok(core::mem::take(&mut self.result)))
                }
            }
            ClientEvent::Stat {
                handle,
                messages,
                octets,
            } if mine(handle) => {
                self.result.stat = Some((messages, octets));
                ReplyProgress::Done(Ok(core::mem::take(&mut self.result)))
            }
            ClientEvent::Scan {
                handle,
                message,
                octets,
            } if mine(handle) => {
                self.result.scans.push((message, octets));
                self.single_or_pending()
            }
            ClientEvent::UniqueId {
                handle,
                message,
                uid,
            } if mine(handle) => {
                self.result.uids.push((message, uid.to_vec()));
                self.single_or_pending()
            }
            ClientEvent::Line { handle, line } if mine(handle) => {
                self.result.lines.push(line.to_vec());
                ReplyProgress::Pending
            }
            ClientEvent::Body { handle, data } if mine(handle) => ReplyProgress::Body(data),
            ClientEvent::End { handle } if mine(handle) => {
                ReplyProgress::Done(Ok(core::mem::take(&mut self.result)))
            }
            ClientEvent::Closed(reason) => ReplyProgress::Closed(reason),
            _ => ReplyProgress::Pending,
        }
    }

    /// `LIST n`/`UIDL n` replies are complete at once; entries of a multi-line listing
    /// come after a `Status` (which set `text`, possibly empty) and end with `End`.
    fn single_or_pending(&mut self) -> ReplyProgress<'static> {
        if self.started {
            ReplyProgress::Pending
        } else {
            ReplyProgress::Done(Ok(core::mem::take(&mut self.result)))
        }
    }
}
