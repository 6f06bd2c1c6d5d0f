//! An in-memory client ↔ server pair with simulated time (quinn-proto's `Pair` idea): the
//! client machine talks to the server machine through byte buffers, the server's
//! application is the scripted one of `common`, and a proptest checks what the client
//! decodes against a plain model of the mailbox.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::time::Duration;

use common::*;
use pop3_proto::{
    Command, Secret,
    client::{ClientCloseReason, ClientConfig, ClientConnection, ClientEvent, CommandHandle},
    server::{CloseReason, ServerConfig, TlsMode},
};
use proptest::prelude::*;

/// What the client decoded, per command, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Reply {
    ok: Option<bool>,
    text: String,
    stat: Option<(u64, u64)>,
    scans: Vec<(u32, u64)>,
    uids: Vec<(u32, Vec<u8>)>,
    body: Vec<u8>,
    lines: usize,
    ended: bool,
}

struct Pair {
    client: ClientConnection,
    server: Harness,
    replies: Vec<(CommandHandle, Reply)>,
    closed: Option<ClientCloseReason>,
    start_tls: bool,
}

impl Pair {
    fn new(server_config: ServerConfig) -> Self {
        let mut config = ClientConfig::new();
        config.allow_plaintext_without_tls = true;
        config.pipelining_window = 1000;
        let mut pair = Self {
            client: ClientConnection::new(config, Duration::ZERO),
            server: Harness::new(server_config),
            replies: Vec::new(),
            closed: None,
            start_tls: false,
        };
        pair.drive();
        pair
    }

    fn now(&self) -> Duration {
        self.server.now
    }

    fn send(&mut self, cmd: Command<'_>) -> CommandHandle {
        let handle = self.client.send(self.now(), cmd).unwrap();
        self.replies.push((handle, Reply::default()));
        handle
    }

    fn reply(&self, handle: CommandHandle) -> &Reply {
        &self.replies.iter().find(|(h, _)| *h == handle).unwrap().1
    }

    /// Moves bytes both ways until nothing moves.
    fn drive(&mut self) {
        loop {
            let mut moved = false;
            let server_out = std::mem::take(&mut self.server.wire);
            if !server_out.is_empty() {
                moved = true;
                self.client.receive(self.now(), &server_out);
            }
            if self.server.conn.is_closed() && self.server.wire.is_empty() {
                self.client.receive_eof(self.now());
            }
            self.collect();
            let mut to_server = Vec::new();
            if self.client.poll_transmit(&mut to_server) > 0 {
                moved = true;
                let out = self.server.send_bytes(&to_server);
                self.server.wire = out;
            }
            if !moved {
                break;
            }
        }
    }

    fn collect(&mut self) {
        while let Some(event) = self.client.poll_event() {
            let entry = |replies: &mut Vec<(CommandHandle, Reply)>, h: CommandHandle| {
                replies.iter().position(|(x, _)| *x == h).unwrap()
            };
            match event {
                ClientEvent::Greeting(g) => assert!(g.status.is_ok()),
                ClientEvent::Status {
                    handle,
                    status,
                    more,
                } => {
                    let i = entry(&mut self.replies, handle);
                    let r = &mut self.replies[i].1;
                    r.ok = Some(status.is_ok());
                    r.text = String::from_utf8_lossy(status.text).into_owned();
                    r.ended = !more;
                }
                ClientEvent::Stat {
                    handle,
                    messages,
                    octets,
                } => {
                    let i = entry(&mut self.replies, handle);
                    self.replies[i].1.ok = Some(true);
                    self.replies[i].1.stat = Some((messages, octets));
                    self.replies[i].1.ended = true;
                }
                ClientEvent::Scan {
                    handle,
                    message,
                    octets,
                } => {
                    let i = entry(&mut self.replies, handle);
                    self.replies[i].1.scans.push((message, octets));
                    if self.replies[i].1.ok.is_none() {
                        self.replies[i].1.ok = Some(true);
                        self.replies[i].1.ended = true;
                    }
                }
                ClientEvent::UniqueId {
                    handle,
                    message,
                    uid,
                } => {
                    let i = entry(&mut self.replies, handle);
                    self.replies[i].1.uids.push((message, uid.to_vec()));
                    if self.replies[i].1.ok.is_none() {
                        self.replies[i].1.ok = Some(true);
                        self.replies[i].1.ended = true;
                    }
                }
                ClientEvent::Capability { handle, .. } | ClientEvent::Line { handle, .. } => {
                    let i = entry(&mut self.replies, handle);
                    self.replies[i].1.lines += 1;
                }
                ClientEvent::Body { handle, data } => {
                    let i = entry(&mut self.replies, handle);
                    self.replies[i].1.body.extend_from_slice(data);
                }
                ClientEvent::End { handle } => {
                    let i = entry(&mut self.replies, handle);
                    self.replies[i].1.ended = true;
                }
                ClientEvent::StartTls => self.start_tls = true,
                ClientEvent::Closed(r) => self.closed = Some(r),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

fn login(pair: &mut Pair) {
    let u = pair.send(Command::User("alice"));
    let p = pair.send(Command::Pass(Secret::new(b"secret")));
    pair.drive();
    assert_eq!(pair.reply(u).ok, Some(true));
    assert_eq!(pair.reply(p).ok, Some(true));
    assert!(pair.client.is_logged_in());
}

/// The CRLF-normalised form of a stored message: what RETR must deliver.
fn normalised(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' if raw.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[test]
fn every_command_through_the_pair() {
    let mut pair = Pair::new(plaintext_config());
    let capa = pair.send(Command::Capa);
    pair.drive();
    assert!(pair.reply(capa).lines >= 8);
    assert!(pair.client.capabilities().unwrap().pipelining);
    login(&mut pair);
    let stat = pair.send(Command::Stat);
    let list = pair.send(Command::List(None));
    let list2 = pair.send(Command::List(Some(2)));
    let uidl = pair.send(Command::Uidl(None));
    let uidl3 = pair.send(Command::Uidl(Some(3)));
    let top = pair.send(Command::Top { msg: 1, lines: 1 });
    let retrs: Vec<_> = (1..=5).map(|n| pair.send(Command::Retr(n))).collect();
    let dele = pair.send(Command::Dele(1));
    let stat2 = pair.send(Command::Stat);
    let rset = pair.send(Command::Rset);
    let noop = pair.send(Command::Noop);
    let dele2 = pair.send(Command::Dele(2));
    let quit = pair.send(Command::Quit);
    pair.drive();
    assert_eq!(pair.reply(stat).stat, Some((5, 3170)));
    assert_eq!(
        pair.reply(list).scans,
        [(1, 58), (2, 38), (3, 29), (4, 17), (5, 3028)]
    );
    assert_eq!(pair.reply(list2).scans, [(2, 38)]);
    assert_eq!(pair.reply(uidl).uids.len(), 5);
    assert_eq!(pair.reply(uidl3).uids, [(3, b"uid-alice-2".to_vec())]);
    assert_eq!(
        pair.reply(top).body,
        b"From: a@example.com\r\nSubject: one\r\n\r\nline1\r\n"
    );
    let stored = [M1.to_vec(), M2.to_vec(), M3.to_vec(), M4.to_vec(), m5()];
    for (h, raw) in retrs.iter().zip(&stored) {
        let r = pair.reply(*h);
        assert!(r.ended);
        assert_eq!(
            r.body,
            normalised(raw),
            "R1939-LIST-6: byte-exact after unstuffing"
        );
    }
    assert_eq!(pair.reply(dele).ok, Some(true));
    assert_eq!(pair.reply(stat2).stat, Some((4, 3112)));
    assert_eq!(pair.reply(rset).ok, Some(true));
    assert_eq!(pair.reply(noop).ok, Some(true));
    assert_eq!(pair.reply(dele2).ok, Some(true));
    assert_eq!(pair.reply(quit).ok, Some(true));
    assert_eq!(pair.server.seen.commits, vec![vec![1]]);
    assert_eq!(pair.closed, Some(ClientCloseReason::Quit));
}

#[test]
fn apop_through_the_pair() {
    let mut pair = Pair::new(plaintext_config());
    assert!(pair.client.apop_timestamp().is_some());
    pair.client.set_secure(); // as if on port 995
    let h = pair.client.apop(pair.now(), "mrose", b"tanstaaf").unwrap();
    pair.replies.push((h, Reply::default()));
    pair.drive();
    assert_eq!(pair.reply(h).ok, Some(true));
    assert!(pair.client.is_logged_in());
}

#[test]
fn stls_through_the_pair() {
    let mut config = ServerConfig::new();
    config.tls = TlsMode::Stls;
    let mut pair = Pair::new(config);
    let capa = pair.send(Command::Capa);
    pair.drive();
    assert!(pair.client.capabilities().unwrap().stls);
    assert!(!pair.client.capabilities().unwrap().user);
    assert!(pair.reply(capa).ended);
    let stls = pair.client.stls(pair.now()).unwrap();
    pair.replies.push((stls, Reply::default()));
    pair.drive();
    assert!(pair.start_tls);
    // Both sides "handshake".
    pair.server.finish_tls();
    pair.client.tls_established().unwrap();
    let capa = pair.send(Command::Capa);
    pair.drive();
    assert!(pair.reply(capa).ended);
    let caps = pair.client.capabilities().unwrap();
    assert!(caps.user && !caps.stls);
    login(&mut pair);
}

#[test]
fn a_thousand_pipelined_commands() {
    let mut pair = Pair::new(plaintext_config());
    pair.send(Command::Capa);
    pair.drive();
    login(&mut pair);
    let handles: Vec<_> = (0..1000)
        .map(|i| {
            if i % 2 == 0 {
                pair.send(Command::Retr(2))
            } else {
                pair.send(Command::List(Some(1)))
            }
        })
        .collect();
    pair.drive();
    for (i, h) in handles.iter().enumerate() {
        let r = pair.reply(*h);
        assert!(r.ended, "reply {i} incomplete");
        if i % 2 == 0 {
            assert_eq!(r.body, M2);
        } else {
            assert_eq!(r.scans, [(1, 58)]);
        }
    }
}

#[test]
fn autologout_through_the_pair() {
    let mut pair = Pair::new(plaintext_config());
    login(&mut pair);
    pair.send(Command::Dele(1));
    pair.drive();
    pair.server.advance(Duration::from_secs(600));
    pair.drive();
    assert_eq!(pair.server.seen.closed, Some(CloseReason::Autologout));
    assert!(pair.server.seen.commits.is_empty());
    assert_eq!(pair.closed, Some(ClientCloseReason::PeerClosed));
}

/// Operations of the model test.
#[derive(Debug, Clone)]
enum Op {
    Stat,
    List(Option<u32>),
    Uidl(Option<u32>),
    Retr(u32),
    Top(u32, u64),
    Dele(u32),
    Rset,
    Noop,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Stat),
        proptest::option::of(0u32..8).prop_map(Op::List),
        proptest::option::of(0u32..8).prop_map(Op::Uidl),
        (0u32..8).prop_map(Op::Retr),
        (0u32..8, 0u64..4).prop_map(|(m, l)| Op::Top(m, l)),
        (0u32..8).prop_map(Op::Dele),
        Just(Op::Rset),
        Just(Op::Noop),
    ]
}

fn message() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            Just(b"\r\n".to_vec()),
            Just(b"\n".to_vec()),
            Just(b".".to_vec()),
            Just(b"..".to_vec()),
            Just(b"\r".to_vec()),
            "[a-z :]{1,12}".prop_map(String::into_bytes),
        ],
        0..20,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn client_decodes_what_a_plain_model_predicts(
        mailbox in proptest::collection::vec(message(), 0..6),
        ops in proptest::collection::vec(op(), 1..30),
        chunk in 1usize..50,
    ) {
        let mut pair = Pair::new(plaintext_config());
        pair.server.users[1].messages = mailbox.clone();
        pair.server.chunk = chunk;
        pair.send(Command::Capa);
        let u = pair.send(Command::User("empty"));
        let p = pair.send(Command::Pass(Secret::new(b"secret")));
        pair.drive();
        prop_assert_eq!(pair.reply(u).ok, Some(true));
        prop_assert_eq!(pair.reply(p).ok, Some(true));
        let sizes: Vec<u64> = mailbox.iter().map(|m| normalised(m).len() as u64).collect();
        let mut deleted = vec![false; mailbox.len()];
        let live = |d: &Vec<bool>, n: u32| (n as usize).checked_sub(1).filter(|&i| i < d.len() && !d[i]);
        let mut expected = Vec::new();
        for op in &ops {
            let (cmd, exp): (Command<'_>, Reply) = match op {
                Op::Stat => {
                    let (c, o) = deleted.iter().zip(&sizes).filter(|(d, _)| !**d).fold((0, 0), |(c, o), (_, s)| (c + 1, o + s));
                    (Command::Stat, Reply { ok: Some(true), stat: Some((c, o)), ended: true, ..Reply::default() })
                }
                Op::List(n) | Op::Uidl(n) => {
                    let uidl = matches!(op, Op::Uidl(_));
                    let cmd = if uidl { Command::Uidl(*n) } else { Command::List(*n) };
                    let pick: Vec<usize> = match n {
                        None => (0..mailbox.len()).filter(|&i| !deleted[i]).collect(),
                        Some(n) => live(&deleted, *n).into_iter().collect(),
                    };
                    if n.is_some() && pick.is_empty() {
                        (cmd, Reply { ok: Some(false), ended: true, ..Reply::default() })
                    } else {
                        let mut r = Reply { ok: Some(true), ended: true, ..Reply::default() };
                        for i in pick {
                            if uidl {
                                r.uids.push((i as u32 + 1, format!("uid-empty-{i}").into_bytes()));
                            } else {
                                r.scans.push((i as u32 + 1, sizes[i]));
                            }
                        }
                        (cmd, r)
                    }
                }
                Op::Retr(n) => match live(&deleted, *n) {
                    Some(i) => (Command::Retr(*n), Reply { ok: Some(true), body: normalised(&mailbox[i]), ended: true, ..Reply::default() }),
                    None => (Command::Retr(*n), Reply { ok: Some(false), ended: true, ..Reply::default() }),
                },
                Op::Top(n, l) => match live(&deleted, *n) {
                    Some(i) => {
                        let full = normalised(&mailbox[i]);
                        let mut body = Vec::new();
                        let mut in_body = false;
                        let mut left = *l;
                        for line in full.split_inclusive(|&b| b == b'\n') {
                            if in_body {
                                if left == 0 { break; }
                                left -= 1;
                            } else if line == b"\r\n" {
                                in_body = true;
                            }
                            body.extend_from_slice(line);
                        }
                        if !in_body && !full.is_empty() {
                            body.extend_from_slice(b"\r\n");
                        }
                        (Command::Top { msg: *n, lines: *l }, Reply { ok: Some(true), body, ended: true, ..Reply::default() })
                    }
                    None => (Command::Top { msg: *n, lines: *l }, Reply { ok: Some(false), ended: true, ..Reply::default() }),
                },
                Op::Dele(n) => match live(&deleted, *n) {
                    Some(i) => { deleted[i] = true; (Command::Dele(*n), Reply { ok: Some(true), ended: true, ..Reply::default() }) }
                    None => (Command::Dele(*n), Reply { ok: Some(false), ended: true, ..Reply::default() }),
                },
                Op::Rset => { deleted.iter_mut().for_each(|d| *d = false); (Command::Rset, Reply { ok: Some(true), ended: true, ..Reply::default() }) }
                Op::Noop => (Command::Noop, Reply { ok: Some(true), ended: true, ..Reply::default() }),
            };
            let h = pair.send(cmd);
            expected.push((h, exp));
        }
        pair.drive();
        for (h, exp) in expected {
            let mut got = pair.reply(h).clone();
            got.text.clear();
            prop_assert_eq!(got, exp);
        }
    }
}

/// Every SASL mechanism, client machine ↔ server machine, with the mechanisms' own client and
/// server halves on each side; right and wrong secrets.
mod sasl_both_ways {
    use std::{sync::Arc, time::Duration};

    use pop3_proto::{
        Command, Listing,
        client::{ClientConfig, ClientConnection, ClientEvent},
        sasl::{Mechanism, SaslClient, SaslServer, ScramCredentials, ScramHash, ServerStep},
        server::{LoginRejection, ServerConfig, ServerConnection, ServerEvent, TlsMode},
    };

    const PASSWORD: &str = "pencil";
    const TOKEN: &str = "mF_9.B5f-4.1JqM";

    /// What the server's application does with one mechanism step.
    enum Verdict {
        Challenge(Vec<u8>),
        Accept,
        Reject,
    }

    /// A mechanism step copied out of the server half, so it can be answered.
    enum Step {
        Challenge(Vec<u8>),
        Password(String, Vec<u8>),
        Cram(String, Vec<u8>, Vec<u8>),
        Token(String, Vec<u8>),
        External(String),
        Lookup(String),
        Success,
        Failure,
    }

    fn owned(step: Result<ServerStep<'_>, pop3_proto::sasl::SaslError>) -> Step {
        match step {
            Ok(ServerStep::Challenge(c)) => Step::Challenge(c.to_vec()),
            Ok(ServerStep::CheckPassword { user, password, .. }) => {
                Step::Password(user.into(), password.expose().to_vec())
            }
            Ok(ServerStep::CheckCramMd5 {
                user,
                challenge,
                digest,
            }) => Step::Cram(user.into(), challenge.to_vec(), digest.to_vec()),
            Ok(ServerStep::CheckToken { user, token }) => {
                Step::Token(user.into(), token.expose().to_vec())
            }
            Ok(ServerStep::CheckExternal { authzid }) => Step::External(authzid.into()),
            Ok(ServerStep::LookupScram { user, .. }) => Step::Lookup(user.into()),
            Ok(ServerStep::Success { .. }) => Step::Success,
            _ => Step::Failure,
        }
    }

    fn decide(sasl: &mut SaslServer, mut step: Step) -> Verdict {
        loop {
            let ok = match step {
                Step::Challenge(c) => return Verdict::Challenge(c),
                Step::Password(user, password) => user == "user" && password == PASSWORD.as_bytes(),
                Step::Cram(user, challenge, digest) => {
                    user == "user"
                        && pop3_proto::sasl::cram_md5::verify(
                            PASSWORD.as_bytes(),
                            &challenge,
                            &digest,
                        )
                }
                Step::Token(user, token) => {
                    (user == "user" || user.is_empty()) && token == TOKEN.as_bytes()
                }
                Step::External(authzid) => authzid.is_empty() || authzid == "user",
                Step::Success => true,
                Step::Failure => false,
                Step::Lookup(user) => {
                    let hash = ScramHash::from_mechanism(sasl.mechanism()).unwrap();
                    let creds = (user == "user").then(|| {
                        ScramCredentials::derive(hash, PASSWORD, b"salt-of-user", 4096).unwrap()
                    });
                    step = owned(sasl.scram_credentials(creds));
                    continue;
                }
            };
            return if ok { Verdict::Accept } else { Verdict::Reject };
        }
    }

    /// Runs one login; returns whether the client ends up logged in.
    fn login(client_mech: SaslClient) -> bool {
        let mechanism = client_mech.mechanism();
        let mut config = ServerConfig::new();
        config.tls = TlsMode::Implicit; // EXTERNAL and the plaintext mechanisms need TLS
        config.sasl_mechanisms = Mechanism::ALL.to_vec();
        let mut server = ServerConnection::new(Arc::new(config), Duration::ZERO, None).unwrap();
        let mut client = ClientConnection::new(ClientConfig::new(), Duration::ZERO);
        client.set_secure();
        client.send(Duration::ZERO, Command::Capa).unwrap();
        let mut auth = None;
        let mut pending_auth = Some(client_mech);
        let mut sasl = SaslServer::new(mechanism, b"server-nonce-123", "pop.example.test");
        let mut result = None;
        for _ in 0..100 {
            let mut bytes = Vec::new();
            let _ = server.poll_transmit(&mut bytes);
            client.receive(Duration::ZERO, &bytes);
            while let Some(event) = client.poll_event() {
                match event {
                    ClientEvent::End { .. } if auth.is_none() => {}
                    ClientEvent::Status { handle, status, .. } if Some(handle) == auth => {
                        result = Some(status.is_ok());
                    }
                    ClientEvent::Closed(_) => result = Some(false),
                    _ => {}
                }
            }
            if auth.is_none() && client.capabilities().is_some() {
                auth = Some(
                    client
                        .authenticate(Duration::ZERO, pending_auth.take().unwrap())
                        .unwrap(),
                );
            }
            if let Some(r) = result {
                return r && client.is_logged_in();
            }
            let mut bytes = Vec::new();
            let _ = client.poll_transmit(&mut bytes);
            server.receive(Duration::ZERO, &bytes);
            while let Some(event) = server.poll_event() {
                let verdict = match event {
                    ServerEvent::AuthStart {
                        initial_response, ..
                    } => {
                        let ir = initial_response.map(|r| r.expose().to_vec());
                        let step = owned(sasl.start(ir.as_deref()));
                        decide(&mut sasl, step)
                    }
                    ServerEvent::AuthResponse { response } => {
                        let r = response.expose().to_vec();
                        let step = owned(sasl.step(&r));
                        decide(&mut sasl, step)
                    }
                    _ => continue,
                };
                match verdict {
                    Verdict::Challenge(c) => server.auth_challenge(&c).unwrap(),
                    Verdict::Accept => server.accept_login(Listing::new()).unwrap(),
                    Verdict::Reject => server.reject_login(LoginRejection::BadCredentials).unwrap(),
                }
            }
        }
        panic!("{mechanism} exchange did not finish");
    }

    fn clients(password: &str, token: &str) -> Vec<SaslClient> {
        vec![
            SaslClient::plain("", "user", password),
            SaslClient::login("user", password),
            SaslClient::cram_md5("user", password),
            SaslClient::scram_sha1("user", password, b"fyko+d2lbbFgONRv9qkxdawL").unwrap(),
            SaslClient::scram_sha256("user", password, b"rOprNGfwEbeRWgbNEkqO").unwrap(),
            SaslClient::xoauth2("user", token),
            SaslClient::oauthbearer(Some("user"), token, Some("pop.example.test"), None),
        ]
    }

    #[test]
    fn every_mechanism_logs_in_with_the_right_secret() {
        for c in clients(PASSWORD, TOKEN) {
            let m = c.mechanism();
            assert!(login(c), "{m} failed with the right secret");
        }
        assert!(login(SaslClient::external("")), "EXTERNAL");
    }

    #[test]
    fn every_mechanism_fails_with_a_wrong_secret() {
        for c in clients("wrong", "wrong-token") {
            let m = c.mechanism();
            assert!(!login(c), "{m} succeeded with a wrong secret");
        }
        assert!(!login(SaslClient::external("someone-else")), "EXTERNAL");
    }
}
