//! A whole server session driven by an `Arbitrary` list of operations: bytes from the client
//! (raw or canned command lines), EOF, time passing, and the application answering (or
//! wrongly answering) whatever event is pending.
//!
//! Invariants (any failure panics, which libFuzzer reports as a crash):
//! 1. Nothing in `pop3-proto` panics.
//! 2. The output is well formed: every line ends in CRLF with no other CR, and outside
//!    multi-line bodies each line is a status line (`+OK`/`-ERR`, parseable by
//!    `Status::parse`, at most 512 octets with CRLF) or a SASL challenge (`+ ` and base64).
//!    Bodies (CAPA, AUTH, LANG, LIST, UIDL, RETR, TOP) end in a `.` line and every other line
//!    in them that starts with `.` is stuffed (`..`). The transcript may end inside a body
//!    only while a RETR/TOP is still being streamed or after `body_abort`.
//! 3. One `poll_transmit` returns at most `output_high_water + 16 KiB (LIST/UIDL pacing) +
//!    2 KiB (the one reply that may cross the high-water mark) + what the application's own
//!    call since the last poll can add (2 x chunk + 64 for a body chunk, 4/3 x data + 8 for
//!    a challenge, 128 for any other answer)`.
//! 4. An answer the machine asked for succeeds; any other call returns `Err` (never panics,
//!    never takes effect).
//! 5. At most one decision is pending at a time; event fields are consistent with the session
//!    (known mechanism, message index within the listing, ascending deletions, the configured
//!    APOP timestamp).
//! 6. `Closed` is reported exactly when `is_closed()` turns true, once; nothing is written
//!    after the output pending at close has been drained. After `handle_timeout(now)` on an
//!    open session, `poll_timeout()` is later than `now`.
#![no_main]

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pop3_proto::{
    Listing,
    dot::{Progress, wire_size},
    response::{Expire, Indicator, Status},
    sasl::Mechanism,
    server::{
        CloseReason, CommitOutcome, LoginRejection, ServerConfig, ServerConnection, ServerEvent,
        TlsMode, Unavailable,
    },
};

/// `LISTING_CHUNK` in `server.rs`: LIST/UIDL are produced this many bytes per poll.
const LISTING_CHUNK: usize = 16 * 1024;
/// Room for the one reply that may take the output past the high-water mark.
const REPLY_SLACK: usize = 2 * 1024;
/// Budget for an answer that writes one status line or a terminator.
const ANSWER_BUDGET: usize = 128;

const APOP_TIMESTAMP: &[u8] = b"<1896.697170952@dbc.mtview.ca.us>";

/// Command lines a client sends (CRLF is appended), to reach deep states quickly.
const LINES: &[&[u8]] = &[
    b"USER alice",
    b"PASS secret",
    b"PASS wrong password",
    b"APOP alice c4c9334bac560ecc979e58001b3e22fb",
    b"AUTH",
    b"AUTH PLAIN",
    b"AUTH PLAIN AGFsaWNlAHNlY3JldA==",
    b"AUTH LOGIN",
    b"AUTH LOGIN YWxpY2U=",
    b"AUTH CRAM-MD5",
    b"AUTH SCRAM-SHA-256",
    b"AUTH EXTERNAL =",
    b"AUTH XOAUTH2",
    b"*",
    b"=",
    b"",
    b"c2VjcmV0",
    b"STAT",
    b"LIST",
    b"LIST 1",
    b"LIST 9",
    b"UIDL",
    b"UIDL 2",
    b"RETR 1",
    b"RETR 2",
    b"RETR 3",
    b"TOP 1 0",
    b"TOP 2 1",
    b"TOP 3 99999999999",
    b"DELE 1",
    b"DELE 2",
    b"RSET",
    b"NOOP",
    b"QUIT",
    b"CAPA",
    b"STLS",
    b"UTF8",
    b"LANG",
    b"LANG en",
    b"LANG fr",
];

/// Stored messages the application serves: CRLF, dot lines, bare LF, no body, empty, bare CR,
/// lines that look like terminators.
const MESSAGES: &[&[u8]] = &[
    b"From: a@example.com\r\nSubject: one\r\n\r\nline1\r\nline2\r\nline3\r\n",
    b"Subject: dots\r\n\r\n.\r\n..\r\n.hidden\r\nend\r\n",
    b"Subject: lf\n\nbody1\nbody2",
    b"Subject: nobody\r\n",
    b"",
    b"a\r.b\r\n",
    b"x\r\n.\r\n+OK not a reply\r\n-ERR nor this\n.\n",
];

/// SASL challenges the application sends.
const CHALLENGES: &[&[u8]] = &[
    b"",
    b"Username:",
    b"Password:",
    b"<1896.697170952@postoffice.example.net>",
    b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
];

const MECHANISMS: [Mechanism; 8] = [
    Mechanism::Plain,
    Mechanism::Login,
    Mechanism::CramMd5,
    Mechanism::ScramSha1,
    Mechanism::ScramSha256,
    Mechanism::OAuthBearer,
    Mechanism::XOAuth2,
    Mechanism::External,
];

#[derive(Debug, Arbitrary)]
struct Setup {
    /// 0: plaintext, 1: STLS offered, 2: implicit TLS.
    tls: u8,
    plaintext_allowed: bool,
    user_pass: bool,
    /// Bit i enables `MECHANISMS[i]`.
    mechanisms: u8,
    /// Taken modulo 5.
    max_auth_failures: u8,
    /// 64-octet command lines, 256-octet SASL lines, 256-octet high-water mark.
    small_buffers: bool,
    /// 0: no APOP, 1: a valid timestamp, 2: an invalid one (`new` must refuse it).
    apop: u8,
    /// Announce LOGIN-DELAY, EXPIRE and IMPLEMENTATION in CAPA.
    announce: bool,
}

#[derive(Debug, Arbitrary)]
enum Op {
    /// Raw bytes from the client.
    Receive(Vec<u8>),
    /// `LINES[i]` and CRLF from the client.
    Line(u8),
    /// The client half-closes.
    Eof,
    /// Time passes, then `handle_timeout`.
    AdvanceTime(u16),
    /// The application answers the pending event correctly; the byte picks how.
    Respond(u8),
    /// The application calls one answer method, fitting or not.
    Call(Call),
}

#[derive(Debug, Arbitrary)]
enum Call {
    AcceptLogin(u8),
    RejectLogin(u8),
    AuthChallenge(Vec<u8>),
    BodyChunk(Vec<u8>),
    BodyEnd,
    MessageUnavailable(u8),
    BodyAbort,
    CommitDone(bool),
    TlsEstablished,
}

#[derive(Debug, Arbitrary)]
struct Input {
    setup: Setup,
    ops: Vec<Op>,
}

/// What the application owes the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Nothing,
    /// Accept or reject a login; `sasl` also allows a challenge.
    Login {
        sasl: bool,
    },
    /// Stream a message; `started` once the first chunk went out.
    Body {
        started: bool,
        index: usize,
    },
    Commit,
    Tls,
}

/// An event, copied out of the borrow.
enum Seen {
    Login { sasl: bool },
    AuthAborted,
    Retrieve { index: usize },
    Commit,
    StartTls,
    Closed(CloseReason),
    Unknown,
}

fn config(setup: &Setup) -> ServerConfig {
    let mut c = ServerConfig::new();
    c.tls = match setup.tls % 3 {
        0 => TlsMode::None,
        1 => TlsMode::Stls,
        _ => TlsMode::Implicit,
    };
    c.allow_plaintext_without_tls = setup.plaintext_allowed;
    c.user_pass = setup.user_pass;
    c.sasl_mechanisms = MECHANISMS
        .iter()
        .enumerate()
        .filter(|(i, _)| setup.mechanisms >> i & 1 == 1)
        .map(|(_, m)| *m)
        .collect();
    c.max_auth_failures = u32::from(setup.max_auth_failures % 5);
    if setup.small_buffers {
        c.command_line_limit = 64;
        c.sasl_line_limit = 256;
        c.output_high_water = 256;
    }
    if setup.announce {
        c.login_delay = Some(900);
        c.expire = Some(Expire::Days(30));
        c.implementation = Some("pop3-fuzz".into());
        c.implementation_before_login = true;
    }
    c
}

/// A small listing: `n % 6` of the canned messages.
fn listing(n: u8) -> Listing {
    let mut l = Listing::new();
    for i in 0..usize::from(n % 6) {
        let raw = MESSAGES[i % MESSAGES.len()];
        l.push(wire_size(raw), format!("uid-{i}").as_bytes())
            .expect("valid uid");
    }
    l
}

fn rejection(n: u8) -> LoginRejection {
    match n % 5 {
        0 => LoginRejection::BadCredentials,
        1 => LoginRejection::InUse,
        2 => LoginRejection::LoginDelay,
        3 => LoginRejection::TemporaryFailure,
        _ => LoginRejection::PermanentFailure,
    }
}

fn unavailable(n: u8) -> Unavailable {
    match n % 3 {
        0 => Unavailable::Gone,
        1 => Unavailable::NeedsUtf8,
        _ => Unavailable::StorageError,
    }
}

/// Copies an event out of its borrow, checking its fields against the session.
fn classify(
    config: &ServerConfig,
    apop: Option<&[u8]>,
    messages: usize,
    event: ServerEvent<'_>,
) -> Seen {
    match event {
        ServerEvent::CheckPassword { user, password } => {
            assert!(!user.is_empty(), "PASS without a user name");
            assert!(!password.expose().is_empty(), "empty password");
            Seen::Login { sasl: false }
        }
        ServerEvent::CheckApop {
            user, timestamp, ..
        } => {
            assert!(!user.is_empty(), "APOP without a user name");
            assert_eq!(Some(timestamp), apop, "APOP against our timestamp");
            Seen::Login { sasl: false }
        }
        ServerEvent::AuthStart { mechanism, .. } => {
            assert!(
                config.sasl_mechanisms.contains(&mechanism),
                "{mechanism:?} not configured"
            );
            Seen::Login { sasl: true }
        }
        ServerEvent::AuthResponse { .. } => Seen::Login { sasl: true },
        ServerEvent::AuthAborted => Seen::AuthAborted,
        ServerEvent::RetrieveMessage { index, .. } => Seen::Retrieve { index },
        ServerEvent::Commit { deleted } => {
            let deleted: Vec<usize> = deleted.collect();
            assert!(deleted.windows(2).all(|w| w[0] < w[1]), "{deleted:?}");
            assert!(deleted.iter().all(|&i| i < messages), "{deleted:?}");
            Seen::Commit
        }
        ServerEvent::StartTls => Seen::StartTls,
        ServerEvent::Closed(reason) => Seen::Closed(reason),
        // A kind added later: nothing to answer here.
        _ => Seen::Unknown,
    }
}

struct Session {
    conn: ServerConnection,
    config: Arc<ServerConfig>,
    apop: Option<&'static [u8]>,
    now: Duration,
    pending: Pending,
    /// Messages in the listing of the last accepted login.
    messages: usize,
    closed: Option<CloseReason>,
    /// The output pending at close has been drained: nothing may follow.
    drained_after_close: bool,
    /// Everything the server sent.
    transcript: Vec<u8>,
    buf: Vec<u8>,
    /// What the application's own calls may have added since the last poll.
    app_bytes: usize,
}

impl Session {
    fn transmit(&mut self) -> usize {
        self.buf.clear();
        let n = self.conn.poll_transmit(&mut self.buf);
        assert_eq!(n, self.buf.len(), "poll_transmit reports what it appended");
        let bound = self.config.output_high_water + LISTING_CHUNK + REPLY_SLACK + self.app_bytes;
        assert!(
            n <= bound,
            "one poll_transmit returned {n} bytes, bound {bound} (app bytes {})",
            self.app_bytes
        );
        self.app_bytes = 0;
        if self.drained_after_close {
            assert_eq!(n, 0, "output after the session closed and drained");
        }
        if self.closed.is_some() {
            self.drained_after_close = true;
        }
        self.transcript.extend_from_slice(&self.buf);
        n
    }

    fn on_event(&mut self, seen: Seen) {
        let asks = !matches!(seen, Seen::Closed(_) | Seen::Unknown);
        if asks {
            assert_eq!(
                self.pending,
                Pending::Nothing,
                "a second decision asked for"
            );
            assert!(self.closed.is_none(), "an event after Closed");
        }
        match seen {
            Seen::Login { sasl } => self.pending = Pending::Login { sasl },
            Seen::AuthAborted | Seen::Unknown => {}
            Seen::Retrieve { index } => {
                assert!(
                    index < self.messages,
                    "message {index} of {}",
                    self.messages
                );
                self.pending = Pending::Body {
                    started: false,
                    index,
                };
            }
            Seen::Commit => self.pending = Pending::Commit,
            Seen::StartTls => self.pending = Pending::Tls,
            Seen::Closed(reason) => {
                assert!(self.closed.is_none(), "Closed reported twice");
                self.closed = Some(reason);
                self.pending = Pending::Nothing;
            }
        }
    }

    /// Drains events and output until neither makes progress.
    fn drive(&mut self) {
        for _ in 0..100_000 {
            let mut progressed = false;
            while let Some(event) = self.conn.poll_event() {
                progressed = true;
                let seen = classify(&self.config, self.apop, self.messages, event);
                self.on_event(seen);
            }
            progressed |= self.transmit() > 0;
            if !progressed {
                assert_eq!(
                    self.conn.is_closed(),
                    self.closed.is_some(),
                    "is_closed() and the Closed event disagree"
                );
                return;
            }
        }
        panic!("the drive loop never settles");
    }

    fn receive(&mut self, bytes: &[u8]) {
        // An adapter reads only while the machine wants input; after close it may still have
        // bytes in hand, which must be ignored.
        if self.conn.wants_read() || self.conn.is_closed() {
            self.conn.receive(self.now, bytes);
        }
        self.drive();
    }

    /// Calls one answer method and checks that it is accepted exactly when it fits.
    fn call(&mut self, call: &Call) {
        let p = self.pending;
        let is_login = matches!(p, Pending::Login { .. });
        let is_body = matches!(p, Pending::Body { .. });
        let (result, fits, next, budget) = match call {
            Call::AcceptLogin(n) => {
                let l = listing(*n);
                let len = l.len();
                let r = self.conn.accept_login(l);
                if r.is_ok() {
                    self.messages = len;
                }
                (r, is_login, Pending::Nothing, ANSWER_BUDGET)
            }
            Call::RejectLogin(n) => (
                self.conn.reject_login(rejection(*n)),
                is_login,
                Pending::Nothing,
                ANSWER_BUDGET,
            ),
            Call::AuthChallenge(data) => (
                self.conn.auth_challenge(data),
                p == Pending::Login { sasl: true },
                Pending::Nothing,
                data.len().div_ceil(3) * 4 + 8,
            ),
            Call::BodyChunk(data) => {
                let next = match p {
                    Pending::Body { index, .. } => Pending::Body {
                        started: true,
                        index,
                    },
                    other => other,
                };
                (
                    self.conn.body_chunk(data).map(|_| ()),
                    is_body,
                    next,
                    2 * data.len() + 64,
                )
            }
            Call::BodyEnd => (
                self.conn.body_end(),
                is_body,
                Pending::Nothing,
                ANSWER_BUDGET,
            ),
            Call::MessageUnavailable(n) => (
                self.conn.message_unavailable(unavailable(*n)),
                matches!(p, Pending::Body { started: false, .. }),
                Pending::Nothing,
                ANSWER_BUDGET,
            ),
            Call::BodyAbort => (
                self.conn.body_abort(),
                is_body,
                Pending::Nothing,
                ANSWER_BUDGET,
            ),
            Call::CommitDone(ok) => (
                self.conn.commit_done(if *ok {
                    CommitOutcome::Committed
                } else {
                    CommitOutcome::Failed
                }),
                p == Pending::Commit,
                Pending::Nothing,
                ANSWER_BUDGET,
            ),
            Call::TlsEstablished => (
                self.conn.tls_established(),
                p == Pending::Tls,
                Pending::Nothing,
                ANSWER_BUDGET,
            ),
        };
        match result {
            Ok(()) => {
                assert!(fits, "{call:?} accepted while {p:?}");
                self.pending = next;
            }
            Err(e) => assert!(!fits, "{call:?} refused ({e}) while {p:?}"),
        }
        self.app_bytes += budget;
        self.transmit();
    }

    /// Answers the pending event the way a correct application would; `pick` chooses how.
    fn respond(&mut self, pick: u8) {
        let choice = pick / 8;
        match self.pending {
            Pending::Nothing => {}
            Pending::Login { sasl } => match pick % 5 {
                0 | 1 => self.call(&Call::AcceptLogin(choice)),
                2 => self.call(&Call::RejectLogin(choice)),
                3 if sasl => {
                    let data = CHALLENGES[usize::from(choice) % CHALLENGES.len()];
                    self.call(&Call::AuthChallenge(data.to_vec()));
                }
                _ => self.call(&Call::RejectLogin(0)),
            },
            Pending::Body { started, index } => {
                let raw = MESSAGES[index % MESSAGES.len()];
                let chunk = usize::from(choice % 16) + 1;
                match pick % 8 {
                    5 if !started => self.call(&Call::MessageUnavailable(choice)),
                    6 => {
                        // One chunk only: the transfer stays open.
                        let first = raw.get(..chunk.min(raw.len())).unwrap_or_default();
                        self.call(&Call::BodyChunk(first.to_vec()));
                    }
                    7 if choice.is_multiple_of(4) => self.call(&Call::BodyAbort),
                    _ => {
                        for piece in raw.chunks(chunk) {
                            self.app_bytes += 2 * piece.len() + 64;
                            let progress = self
                                .conn
                                .body_chunk(piece)
                                .expect("a chunk for the pending RETR/TOP");
                            self.pending = Pending::Body {
                                started: true,
                                index,
                            };
                            self.transmit();
                            if progress == Progress::Done {
                                break;
                            }
                        }
                        self.call(&Call::BodyEnd);
                    }
                }
            }
            Pending::Commit => self.call(&Call::CommitDone(!pick.is_multiple_of(4))),
            Pending::Tls => self.call(&Call::TlsEstablished),
        }
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Receive(bytes) => self.receive(bytes),
            Op::Line(i) => {
                let mut line = LINES[usize::from(*i) % LINES.len()].to_vec();
                line.extend_from_slice(b"\r\n");
                self.receive(&line);
            }
            Op::Eof => {
                self.conn.receive_eof(self.now);
                self.drive();
            }
            Op::AdvanceTime(seconds) => {
                self.now += Duration::from_secs(u64::from(*seconds));
                self.conn.handle_timeout(self.now);
                if !self.conn.is_closed() {
                    let next = self.conn.poll_timeout();
                    assert!(
                        next.is_some_and(|t| t > self.now),
                        "poll_timeout {next:?} not after now {:?}",
                        self.now
                    );
                }
                self.drive();
            }
            Op::Respond(pick) => {
                self.respond(*pick);
                self.drive();
            }
            Op::Call(call) => {
                self.call(call);
                self.drive();
            }
        }
    }
}

/// How a reply line continues the transcript.
#[derive(Debug, PartialEq, Eq)]
enum Shape {
    /// The next line starts a new reply.
    Reply,
    /// A multi-line body follows.
    Body,
    /// `+OK n messages (m octets)`: LIST (a body follows) or RSET (it does not). The next
    /// line decides: a body line starts with a digit or is the terminator, a reply never does.
    ListOrRset,
}

/// Whether `s` is `digits` + `rest`.
fn digits_then<'a>(s: &'a [u8], rest: &[u8]) -> Option<&'a [u8]> {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    (n > 0).then_some(())?;
    s[n..].strip_prefix(rest)
}

fn reply_shape(line: &[u8]) -> Shape {
    if line == b"+" || line.starts_with(b"+ ") {
        let data = line.get(2..).unwrap_or_default();
        assert!(
            data.iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='),
            "challenge is not base64: {:?}",
            line.escape_ascii().to_string()
        );
        return Shape::Reply;
    }
    let status = Status::parse(line).unwrap_or_else(|e| {
        panic!(
            "not a status line ({e}): {:?}",
            line.escape_ascii().to_string()
        )
    });
    assert!(line.len() + 2 <= 512, "status line over 512 octets");
    if status.indicator == Indicator::Err {
        return Shape::Reply;
    }
    const BODIES: &[&[u8]] = &[
        b"Capability list follows.",
        b"Supported mechanisms follow.",
        b"Language listing follows.",
        b"Unique-ID listing follows.",
        b"Top of message follows.",
    ];
    let text = status.text;
    if (status.code.is_none() && BODIES.contains(&text))
        || digits_then(text, b" octets") == Some(b"")
    {
        Shape::Body
    } else if digits_then(text, b" messages (").and_then(|rest| digits_then(rest, b" octets)"))
        == Some(b"")
    {
        Shape::ListOrRset
    } else {
        Shape::Reply
    }
}

/// Checks invariant 2 over everything the server sent.
fn check_transcript(t: &[u8], may_end_in_body: bool) {
    let mut shape = Shape::Reply;
    let mut rest = t;
    let mut first = true;
    while !rest.is_empty() {
        let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
            assert!(
                shape == Shape::Body && may_end_in_body,
                "output ends in an incomplete line: {:?}",
                rest.escape_ascii().to_string()
            );
            return;
        };
        let (raw, tail) = rest.split_at(lf + 1);
        rest = tail;
        let line = raw
            .strip_suffix(b"\r\n")
            .unwrap_or_else(|| panic!("line without CRLF: {:?}", raw.escape_ascii().to_string()));
        assert!(
            !line.contains(&b'\r'),
            "bare CR in {:?}",
            line.escape_ascii().to_string()
        );
        if first {
            assert!(line.starts_with(b"+OK"), "the greeting comes first");
            first = false;
        }
        if shape == Shape::ListOrRset {
            shape = if line == b"." || line.first().is_some_and(u8::is_ascii_digit) {
                Shape::Body
            } else {
                Shape::Reply
            };
        }
        shape = match shape {
            Shape::Body if line == b"." => Shape::Reply,
            Shape::Body => {
                assert!(
                    !line.starts_with(b".") || line.starts_with(b".."),
                    "unstuffed dot line in a body: {:?}",
                    line.escape_ascii().to_string()
                );
                Shape::Body
            }
            Shape::Reply | Shape::ListOrRset => reply_shape(line),
        };
    }
    assert!(
        shape != Shape::Body || may_end_in_body,
        "output ends inside a body"
    );
}

fuzz_target!(|input: Input| {
    let config = Arc::new(config(&input.setup));
    let apop: Option<&'static [u8]> = match input.setup.apop % 3 {
        0 => None,
        1 => Some(APOP_TIMESTAMP),
        _ => Some(b"1896.697170952@dbc.mtview.ca.us"),
    };
    let conn = match ServerConnection::new(Arc::clone(&config), Duration::ZERO, apop) {
        Ok(conn) => conn,
        Err(e) => {
            assert_eq!(input.setup.apop % 3, 2, "refused a valid setup: {e}");
            return;
        }
    };
    assert_ne!(
        input.setup.apop % 3,
        2,
        "accepted an invalid APOP timestamp"
    );
    let mut session = Session {
        conn,
        config,
        apop,
        now: Duration::ZERO,
        pending: Pending::Nothing,
        messages: 0,
        closed: None,
        drained_after_close: false,
        transcript: Vec::new(),
        buf: Vec::new(),
        app_bytes: 0,
    };
    session.drive();
    for op in &input.ops {
        session.run(op);
    }
    // POP3_FUZZ_TRACE=1 prints the transcript, e.g. when replaying a crash or a seed.
    static TRACE: OnceLock<bool> = OnceLock::new();
    if *TRACE.get_or_init(|| std::env::var_os("POP3_FUZZ_TRACE").is_some()) {
        eprintln!(
            "{}\n(pending {:?}, closed {:?})",
            String::from_utf8_lossy(&session.transcript),
            session.pending,
            session.closed
        );
    }
    let streaming = matches!(session.pending, Pending::Body { started: true, .. });
    let aborted = session.closed == Some(CloseReason::BodyAborted);
    check_transcript(&session.transcript, streaming || aborted);
});
