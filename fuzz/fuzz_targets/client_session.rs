//! A client session driven by an `Arbitrary` list of operations: commands the application
//! queues, server bytes in arbitrary pieces, EOF, time passing, TLS completion.
//!
//! Invariants (a failure panics, which libFuzzer reports):
//! 1. Nothing in `pop3-proto` panics.
//! 2. Every reply event names a handle that was issued and not yet finished; each handle is
//!    finished at most once (by `Status{more:false}`, `Stat`, a single `Scan`/`UniqueId`, or
//!    `End`); `Body`/`Line`/`Capability` pieces only arrive for a handle in a multi-line reply.
//! 3. What the client writes is lines ending in CRLF, each at most 255 octets unless it is a
//!    SASL continuation line.
//! 4. `Closed` is reported at most once, and nothing is reported after it.
#![no_main]

use std::{collections::HashSet, time::Duration};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pop3_proto::{
    Command, Secret,
    client::{ClientConfig, ClientConnection, ClientEvent, CommandHandle},
    sasl::SaslClient,
};

#[derive(Debug, Arbitrary)]
enum Op {
    Receive(Vec<u8>),
    Canned(u8),
    Send(u8, u32),
    Auth(u8),
    Eof,
    Advance(u16),
    TlsDone,
}

const CANNED: &[&[u8]] = &[
    b"+OK ready <1.2@x>\r\n",
    b"+OK\r\n",
    b"-ERR [SYS/TEMP] no\r\n",
    b"+OK 2 320\r\n",
    b"+OK\r\n1 10\r\n2 20\r\n.\r\n",
    b"+OK\r\n1 abc\r\n.\r\n",
    b"+OK\r\nPIPELINING\r\nSASL PLAIN SCRAM-SHA-256\r\nSTLS\r\n.\r\n",
    b"+OK\r\nSubject: x\r\n\r\n..dot\r\n.\r\n",
    b"+ \r\n",
    b"+ cj1ub25jZSxzPVFTWENSK1E2c2VrOGJmOTIsaT00MDk2\r\n",
    b".\r\n",
    b"+OK Begin TLS\r\n",
];

fuzz_target!(|ops: Vec<Op>| {
    let mut config = ClientConfig::new();
    config.allow_plaintext_without_tls = true;
    config.allow_apop_without_tls = true;
    let mut c = ClientConnection::new(config, Duration::ZERO);
    let mut now = Duration::ZERO;
    let mut open: HashSet<CommandHandle> = HashSet::new();
    let mut multi: HashSet<CommandHandle> = HashSet::new();
    let mut closed = false;
    let mut wire = Vec::new();
    for op in ops.into_iter().take(200) {
        match op {
            Op::Receive(bytes) => c.receive(now, &bytes),
            Op::Canned(i) => c.receive(now, CANNED[i as usize % CANNED.len()]),
            Op::Send(i, n) => {
                let cmd = match i % 12 {
                    0 => Command::Stat,
                    1 => Command::List(None),
                    2 => Command::List(Some(n)),
                    3 => Command::Uidl(None),
                    4 => Command::Uidl(Some(n)),
                    5 => Command::Retr(n),
                    6 => Command::Top { msg: n, lines: u64::from(n % 5) },
                    7 => Command::Capa,
                    8 => Command::User("alice"),
                    9 => Command::Pass(Secret::new(b"secret")),
                    10 => Command::Stls,
                    _ => Command::Quit,
                };
                if let Ok(h) = c.send(now, cmd) {
                    assert!(open.insert(h), "handle reused");
                }
            }
            Op::Auth(i) => {
                let mech = match i % 4 {
                    0 => SaslClient::plain("", "alice", "secret"),
                    1 => SaslClient::login("alice", "secret"),
                    2 => SaslClient::cram_md5("alice", "secret"),
                    _ => match SaslClient::scram_sha256("alice", "secret", b"fyko+d2lbbFgONRv9qkxdawL") {
                        Ok(m) => m,
                        Err(_) => continue,
                    },
                };
                if let Ok(h) = c.authenticate(now, mech) {
                    assert!(open.insert(h));
                }
            }
            Op::Eof => c.receive_eof(now),
            Op::Advance(s) => {
                now += Duration::from_secs(u64::from(s));
                c.handle_timeout(now);
            }
            Op::TlsDone => {
                let _ = c.tls_established();
            }
        }
        while let Some(event) = c.poll_event() {
            assert!(!closed, "event after Closed: {event:?}");
            let finish = |open: &mut HashSet<CommandHandle>, multi: &mut HashSet<CommandHandle>, h| {
                assert!(open.remove(&h), "finished twice or unknown: {h:?}");
                multi.remove(&h);
            };
            match event {
                ClientEvent::Status { handle, more, .. } => {
                    assert!(open.contains(&handle) && !multi.contains(&handle));
                    if more {
                        multi.insert(handle);
                    } else {
                        finish(&mut open, &mut multi, handle);
                    }
                }
                ClientEvent::Stat { handle, .. } => finish(&mut open, &mut multi, handle),
                ClientEvent::Scan { handle, .. } | ClientEvent::UniqueId { handle, .. } => {
                    if !multi.contains(&handle) {
                        finish(&mut open, &mut multi, handle);
                    }
                }
                ClientEvent::Capability { handle, .. }
                | ClientEvent::Line { handle, .. }
                | ClientEvent::Body { handle, .. } => assert!(multi.contains(&handle), "piece outside a multi-line reply"),
                ClientEvent::End { handle } => {
                    assert!(multi.contains(&handle));
                    finish(&mut open, &mut multi, handle);
                }
                ClientEvent::Closed(_) => closed = true,
                _ => {}
            }
        }
        wire.clear();
        let _ = c.poll_transmit(&mut wire);
        for line in wire.split_inclusive(|&b| b == b'\n') {
            assert!(line.ends_with(b"\r\n"), "unterminated line {line:?}");
            let is_command = line.len() >= 4 && line[..4].iter().all(u8::is_ascii_uppercase);
            assert!(!is_command || line.len() <= 255 || line.starts_with(b"AUTH"), "long command");
        }
    }
});
