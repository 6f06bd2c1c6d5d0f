//! A scripted application around `ServerConnection`: the fixture maildrops of the conformance
//! checklist (`shared/notes/pop3-conformance-checklist.md` §0) and a driver with simulated
//! time.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use pop3_proto::{
    Listing,
    dot::{Progress, wire_size},
    server::{
        CloseReason, CommitOutcome, LoginRejection, ServerConfig, ServerConnection, ServerEvent,
    },
};

pub const M1: &[u8] = b"From: a@example.com\r\nSubject: one\r\n\r\nline1\r\nline2\r\nline3\r\n";
pub const M2: &[u8] = b"Subject: dots\r\n\r\n.\r\n..\r\n.hidden\r\nend\r\n";
pub const M3: &[u8] = b"Subject: lf\n\nbody1\nbody2";
pub const M4: &[u8] = b"Subject: nobody\r\n";
pub fn m5() -> Vec<u8> {
    let mut m = b"Subject: bin\r\n\r\ncaf\xE9 \x00 x\r\n".to_vec();
    m.extend(std::iter::repeat_n(b'A', 3000));
    m.extend_from_slice(b"\r\n");
    m
}
pub const APOP_TIMESTAMP: &[u8] = b"<1896.697170952@dbc.mtview.ca.us>";

pub struct User {
    pub name: &'static str,
    pub password: &'static [u8],
    pub messages: Vec<Vec<u8>>,
}

pub fn users() -> Vec<User> {
    vec![
        User {
            name: "alice",
            password: b"secret",
            messages: vec![M1.to_vec(), M2.to_vec(), M3.to_vec(), M4.to_vec(), m5()],
        },
        User {
            name: "empty",
            password: b"secret",
            messages: vec![],
        },
        User {
            name: "spaced",
            password: b"pass word",
            messages: vec![M1.to_vec()],
        },
        User {
            name: "mrose",
            password: b"tanstaaf",
            messages: vec![M1.to_vec()],
        },
        User {
            name: "tim",
            password: b"tanstaaftanstaaf",
            messages: vec![M1.to_vec()],
        },
    ]
}

/// What the scripted application saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub commits: Vec<Vec<usize>>,
    pub closed: Option<CloseReason>,
    pub start_tls: usize,
    pub auth_aborted: usize,
    pub password_checks: usize,
}

pub struct Harness {
    pub conn: ServerConnection,
    pub users: Vec<User>,
    /// Users whose maildrop is "locked by another session".
    pub locked: Vec<&'static str>,
    pub user: Option<usize>,
    pub now: Duration,
    pub chunk: usize,
    /// Answer the next commit with this outcome.
    pub commit_outcome: CommitOutcome,
    /// Hold commits until `finish_commit` is called.
    pub hold_commit: bool,
    pub seen: Seen,
    pub wire: Vec<u8>,
    pub tls_pending: bool,
}

pub fn plaintext_config() -> ServerConfig {
    let mut c = ServerConfig::new();
    c.allow_plaintext_without_tls = true;
    c
}

impl Harness {
    pub fn new(config: ServerConfig) -> Self {
        Self::with_timestamp(config, Some(APOP_TIMESTAMP))
    }

    pub fn with_timestamp(config: ServerConfig, ts: Option<&[u8]>) -> Self {
        let conn = ServerConnection::new(Arc::new(config), Duration::ZERO, ts).unwrap();
        let mut h = Self {
            conn,
            users: users(),
            locked: vec![],
            user: None,
            now: Duration::ZERO,
            chunk: 7,
            commit_outcome: CommitOutcome::Committed,
            hold_commit: false,
            seen: Seen::default(),
            wire: Vec::new(),
            tls_pending: false,
        };
        h.drive();
        h
    }

    /// The greeting and anything else sent so far.
    pub fn take_output(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.wire)).into_owned()
    }

    /// Sends bytes, drives the machine, returns everything the server wrote since the last
    /// call.
    pub fn send(&mut self, bytes: &[u8]) -> String {
        String::from_utf8_lossy(&self.send_bytes(bytes)).into_owned()
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.conn.receive(self.now, bytes);
        self.drive();
        std::mem::take(&mut self.wire)
    }

    /// Logs in as alice and discards the output.
    pub fn login_alice(&mut self) {
        let out = self.send(b"USER alice\r\nPASS secret\r\n");
        assert!(
            out.ends_with("+OK Logged in, 5 messages (3170 octets)\r\n"),
            "{out}"
        );
        self.wire.clear();
    }

    pub fn advance(&mut self, by: Duration) -> String {
        self.now += by;
        self.conn.handle_timeout(self.now);
        self.drive();
        String::from_utf8_lossy(&std::mem::take(&mut self.wire)).into_owned()
    }

    pub fn finish_tls(&mut self) {
        assert!(self.tls_pending);
        self.tls_pending = false;
        self.conn.tls_established().unwrap();
        self.drive();
    }

    pub fn finish_commit(&mut self) {
        self.conn.commit_done(self.commit_outcome).unwrap();
        self.drive();
    }

    fn listing_for(&self, user: usize) -> Listing {
        let mut l = Listing::new();
        for (i, m) in self.users[user].messages.iter().enumerate() {
            l.push(
                wire_size(m),
                format!("uid-{}-{i}", self.users[user].name).as_bytes(),
            )
            .unwrap();
        }
        l
    }

    fn login(&mut self, user: Option<usize>) {
        match user {
            Some(u) if self.locked.contains(&self.users[u].name) => {
                self.conn.reject_login(LoginRejection::InUse).unwrap();
            }
            Some(u) => {
                self.user = Some(u);
                let listing = self.listing_for(u);
                self.conn.accept_login(listing).unwrap();
            }
            None => self
                .conn
                .reject_login(LoginRejection::BadCredentials)
                .unwrap(),
        }
    }

    fn find(&self, name: &str, password: &[u8]) -> Option<usize> {
        self.users
            .iter()
            .position(|u| u.name == name && u.password == password)
    }

    /// Drains events and output until neither makes progress.
    pub fn drive(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(event) = self.conn.poll_event().map(event_to_owned) {
                progressed = true;
                self.handle(event);
            }
            progressed |= self.conn.poll_transmit(&mut self.wire) > 0;
            if !progressed {
                break;
            }
        }
    }

    fn handle(&mut self, event: OwnedEvent) {
        match event {
            OwnedEvent::CheckPassword(user, pass) => {
                self.seen.password_checks += 1;
                let u = self.find(&user, &pass);
                self.login(u);
            }
            OwnedEvent::CheckApop(user, ts, digest) => {
                let u = self.users.iter().position(|u| {
                    u.name == user && pop3_proto::apop::verify(&ts, u.password, &digest)
                });
                self.login(u);
            }
            // A minimal PLAIN and LOGIN for the framing tests; the mechanisms proper are
            // tested in the sasl module.
            OwnedEvent::AuthStart(mech, ir) => match (mech, ir) {
                (pop3_proto::sasl::Mechanism::Plain, Some(msg)) => {
                    let parts: Vec<&[u8]> = msg.split(|&b| b == 0).collect();
                    let u = match parts.as_slice() {
                        [authz, user, pass] if authz.is_empty() || authz == user => {
                            std::str::from_utf8(user)
                                .ok()
                                .and_then(|user| self.find(user, pass))
                        }
                        _ => None,
                    };
                    self.login(u);
                }
                (pop3_proto::sasl::Mechanism::Login, None) => {
                    self.conn.auth_challenge(b"Username:").unwrap();
                }
                (pop3_proto::sasl::Mechanism::Login, Some(_user)) => {
                    self.conn.auth_challenge(b"Password:").unwrap();
                }
                _ => self
                    .conn
                    .reject_login(LoginRejection::BadCredentials)
                    .unwrap(),
            },
            OwnedEvent::AuthResponse(data) => {
                // LOGIN: the first response is the user (asked for "Password:"), the second
                // the password; keep it simple: accept tim's password.
                if data == b"tim" {
                    self.conn.auth_challenge(b"Password:").unwrap();
                } else {
                    let u = self.find("tim", &data);
                    self.login(u);
                }
            }
            OwnedEvent::AuthAborted => self.seen.auth_aborted += 1,
            OwnedEvent::Retrieve(index, _top) => {
                let user = self.user.unwrap();
                let msg = self.users[user].messages[index].clone();
                for piece in msg.chunks(self.chunk.max(1)) {
                    if self.conn.body_chunk(piece).unwrap() == Progress::Done {
                        break;
                    }
                    self.conn.poll_transmit(&mut self.wire);
                }
                self.conn.body_end().unwrap();
            }
            OwnedEvent::Commit(deleted) => {
                self.seen.commits.push(deleted);
                if !self.hold_commit {
                    self.conn.commit_done(self.commit_outcome).unwrap();
                }
            }
            OwnedEvent::StartTls => {
                self.seen.start_tls += 1;
                self.tls_pending = true;
            }
            OwnedEvent::Closed(reason) => {
                assert!(self.seen.closed.is_none(), "Closed reported twice");
                self.seen.closed = Some(reason);
            }
        }
    }
}

/// Events copied out so the harness can call back into the connection.
enum OwnedEvent {
    CheckPassword(String, Vec<u8>),
    CheckApop(String, Vec<u8>, Vec<u8>),
    AuthStart(pop3_proto::sasl::Mechanism, Option<Vec<u8>>),
    AuthResponse(Vec<u8>),
    AuthAborted,
    Retrieve(usize, Option<u64>),
    Commit(Vec<usize>),
    StartTls,
    Closed(CloseReason),
}

fn event_to_owned(e: ServerEvent<'_>) -> OwnedEvent {
    match e {
        ServerEvent::CheckPassword { user, password } => {
            OwnedEvent::CheckPassword(user.to_owned(), password.expose().to_vec())
        }
        ServerEvent::CheckApop {
            user,
            timestamp,
            digest,
        } => OwnedEvent::CheckApop(user.to_owned(), timestamp.to_vec(), digest.to_vec()),
        ServerEvent::AuthStart {
            mechanism,
            initial_response,
        } => OwnedEvent::AuthStart(mechanism, initial_response.map(|r| r.expose().to_vec())),
        ServerEvent::AuthResponse { response } => {
            OwnedEvent::AuthResponse(response.expose().to_vec())
        }
        ServerEvent::AuthAborted => OwnedEvent::AuthAborted,
        ServerEvent::RetrieveMessage { index, top_lines } => OwnedEvent::Retrieve(index, top_lines),
        ServerEvent::Commit { deleted } => OwnedEvent::Commit(deleted.collect()),
        ServerEvent::StartTls => OwnedEvent::StartTls,
        ServerEvent::Closed(r) => OwnedEvent::Closed(r),
        other => panic!("unexpected event {other:?}"),
    }
}
