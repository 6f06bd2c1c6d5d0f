//! In-memory server sessions: whole POP3 sessions per second through `ServerConnection`, and
//! the time to produce `LIST` and `UIDL` of a 100,000-message maildrop via `poll_transmit`.
//!
//! No sockets and no clock: the bench is the application and the adapter at once, answering
//! events the way `crates/pop3-proto/tests/common/mod.rs` does.
//!
//! ```sh
//! cargo bench -p pop3-benches --bench session -- --warm-up-time 1 --measurement-time 3
//! ```

use std::{hint::black_box, sync::Arc, time::Duration};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pop3_benches::{CHUNK, listing, mail};
use pop3_proto::{
    Listing,
    dot::{Progress, wire_size},
    server::{
        CloseReason, CommitOutcome, LoginRejection, ServerConfig, ServerConnection, ServerEvent,
    },
};

/// The session's commands, sent one at a time as a non-pipelining client does.
const SCRIPT: [&[u8]; 6] = [
    b"USER alice\r\n",
    b"PASS secret\r\n",
    b"STAT\r\n",
    b"LIST\r\n",
    b"RETR 1\r\n",
    b"QUIT\r\n",
];

/// Time never advances in these benches: nothing here waits for autologout.
const NOW: Duration = Duration::ZERO;

/// The application side: one mailbox whose first message is `message`.
struct App {
    listing: Listing,
    message: Vec<u8>,
}

/// What to do about an event, copied out so the connection can be called again.
enum Answer {
    Login(bool),
    Retrieve(usize),
    Commit,
    Nothing,
}

impl App {
    fn new(message: Vec<u8>) -> Self {
        let mut listing = Listing::new();
        listing
            .push(wire_size(&message), b"uid-0001")
            .expect("valid uid");
        for (i, size) in [1_200_u64, 5_400, 830, 64_000].into_iter().enumerate() {
            listing
                .push(size, format!("uid-{:04}", i + 2).as_bytes())
                .expect("valid uid");
        }
        Self { listing, message }
    }

    /// Drains events and output until neither makes progress; output is appended to `wire`.
    fn drive(&self, conn: &mut ServerConnection, wire: &mut Vec<u8>) -> Option<CloseReason> {
        let mut closed = None;
        loop {
            let mut progressed = false;
            while let Some(event) = conn.poll_event() {
                progressed = true;
                let answer = match event {
                    ServerEvent::CheckPassword { user, password } => {
                        Answer::Login(user == "alice" && *password.expose() == b"secret")
                    }
                    ServerEvent::RetrieveMessage { index, .. } => Answer::Retrieve(index),
                    ServerEvent::Commit { .. } => Answer::Commit,
                    ServerEvent::Closed(reason) => {
                        closed = Some(reason);
                        Answer::Nothing
                    }
                    other => unreachable!("the script causes no {other:?}"),
                };
                match answer {
                    Answer::Login(true) => conn
                        .accept_login(self.listing.clone())
                        .expect("login pending"),
                    Answer::Login(false) => conn
                        .reject_login(LoginRejection::BadCredentials)
                        .expect("login pending"),
                    Answer::Retrieve(index) => {
                        assert_eq!(index, 0, "the script retrieves message 1");
                        for chunk in self.message.chunks(CHUNK) {
                            if conn.body_chunk(chunk).expect("retrieve pending") == Progress::Done {
                                break;
                            }
                            conn.poll_transmit(wire);
                        }
                        conn.body_end().expect("retrieve pending");
                    }
                    Answer::Commit => conn
                        .commit_done(CommitOutcome::Committed)
                        .expect("commit pending"),
                    Answer::Nothing => {}
                }
            }
            progressed |= conn.poll_transmit(wire) > 0;
            if !progressed {
                return closed;
            }
        }
    }

    /// One whole session; returns how it closed.
    fn session(&self, config: &Arc<ServerConfig>, wire: &mut Vec<u8>) -> Option<CloseReason> {
        wire.clear();
        let mut conn =
            ServerConnection::new(Arc::clone(config), NOW, None).expect("no APOP timestamp");
        self.drive(&mut conn, wire);
        for command in SCRIPT {
            conn.receive(NOW, command);
            if let Some(reason) = self.drive(&mut conn, wire) {
                return Some(reason);
            }
        }
        None
    }
}

fn plaintext_config() -> Arc<ServerConfig> {
    let mut config = ServerConfig::new();
    config.allow_plaintext_without_tls = true;
    Arc::new(config)
}

fn sessions(c: &mut Criterion) {
    let config = plaintext_config();
    let app = App::new(mail(10 * 1024));
    let mut wire = Vec::with_capacity(64 * 1024);

    assert_eq!(app.session(&config, &mut wire), Some(CloseReason::Quit));
    let text = String::from_utf8_lossy(&wire);
    assert!(text.starts_with("+OK POP3 server ready\r\n"), "{text}");
    assert!(text.contains("\r\n+OK 10240 octets\r\n"), "{text}");
    assert!(text.ends_with(".\r\n+OK Logging out.\r\n"), "{text}");

    let mut group = c.benchmark_group("session");
    group.throughput(Throughput::Elements(1));
    group.bench_function("user_pass_stat_list_retr10k_quit", |b| {
        b.iter(|| app.session(black_box(&config), &mut wire));
    });
    group.finish();
}

/// Receives `command` and drains everything it produces, writing each `poll_transmit` result
/// away as an adapter would; returns the bytes produced.
fn listing_output(conn: &mut ServerConnection, command: &[u8], buf: &mut Vec<u8>) -> usize {
    conn.receive(NOW, command);
    let mut total = 0;
    loop {
        if let Some(event) = conn.poll_event() {
            unreachable!("LIST and UIDL are answered without the application: {event:?}");
        }
        buf.clear();
        match conn.poll_transmit(buf) {
            0 => return total,
            n => total += n,
        }
    }
}

fn listing_100k(c: &mut Criterion) {
    const MESSAGES: usize = 100_000;
    let config = plaintext_config();
    let app = App {
        listing: listing(MESSAGES, 4_096),
        message: Vec::new(),
    };
    let mut conn = ServerConnection::new(config, NOW, None).expect("no APOP timestamp");
    let mut buf = Vec::with_capacity(64 * 1024);
    conn.receive(NOW, b"USER alice\r\nPASS secret\r\n");
    assert_eq!(app.drive(&mut conn, &mut buf), None);
    assert!(buf.ends_with(b"+OK Logged in, 100000 messages (409600000 octets)\r\n"));

    let mut group = c.benchmark_group("listing_100k");
    for (name, command) in [("list", &b"LIST\r\n"[..]), ("uidl", b"UIDL\r\n")] {
        // Check the whole reply once, then time producing it.
        let mut all = Vec::new();
        conn.receive(NOW, command);
        assert_eq!(app.drive(&mut conn, &mut all), None);
        assert!(all.ends_with(b".\r\n"));
        assert!(
            all.windows(9).any(|w| w == b"\r\n100000 "),
            "the last message is listed"
        );
        let lines = all.split(|&b| b == b'\n').count() - 1;
        assert_eq!(
            lines,
            MESSAGES + 2,
            "status, one line per message, terminator"
        );
        assert_eq!(listing_output(&mut conn, command, &mut buf), all.len());

        group.throughput(Throughput::Bytes(all.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| listing_output(&mut conn, black_box(command), &mut buf));
        });
    }
    group.finish();
}

criterion_group!(benches, sessions, listing_100k);
criterion_main!(benches);
