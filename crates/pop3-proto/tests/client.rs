//! Client conformance tests against a scripted fake server: one test per client row of
//! `shared/notes/pop3-conformance-checklist.md`, named by its ID.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::time::Duration;

use pop3_proto::{
    Command, Secret,
    client::{
        ClientCloseReason, ClientConfig, ClientConnection, ClientError, ClientEvent, ProtocolError,
    },
    response::{Indicator, KnownCode},
    sasl::SaslClient,
};

const T0: Duration = Duration::ZERO;

/// Events as owned strings, easy to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Greeting(String),
    Status(u64, bool, String, bool),
    Stat(u64, u64, u64),
    Scan(u64, u32, u64),
    Uid(u64, u32, Vec<u8>),
    Cap(u64, String),
    Line(u64, Vec<u8>),
    Body(u64, Vec<u8>),
    End(u64),
    StartTls,
    Closed(ClientCloseReason),
}

fn h(handle: pop3_proto::client::CommandHandle) -> u64 {
    // Handles are opaque; their Debug form is stable enough for tests.
    format!("{handle:?}")
        .trim_start_matches("CommandHandle(")
        .trim_end_matches(')')
        .parse()
        .unwrap()
}

fn drain(c: &mut ClientConnection) -> Vec<Ev> {
    let mut out = Vec::new();
    while let Some(e) = c.poll_event() {
        out.push(match e {
            ClientEvent::Greeting(g) => Ev::Greeting(String::from_utf8_lossy(g.status.text).into()),
            ClientEvent::Status {
                handle,
                status,
                more,
            } => Ev::Status(
                h(handle),
                status.indicator == Indicator::Ok,
                String::from_utf8_lossy(status.text).into(),
                more,
            ),
            ClientEvent::Stat {
                handle,
                messages,
                octets,
            } => Ev::Stat(h(handle), messages, octets),
            ClientEvent::Scan {
                handle,
                message,
                octets,
            } => Ev::Scan(h(handle), message, octets),
            ClientEvent::UniqueId {
                handle,
                message,
                uid,
            } => Ev::Uid(h(handle), message, uid.to_vec()),
            ClientEvent::Capability { handle, capability } => {
                Ev::Cap(h(handle), format!("{capability:?}"))
            }
            ClientEvent::Line { handle, line } => Ev::Line(h(handle), line.to_vec()),
            ClientEvent::Body { handle, data } => Ev::Body(h(handle), data.to_vec()),
            ClientEvent::End { handle } => Ev::End(h(handle)),
            ClientEvent::StartTls => Ev::StartTls,
            ClientEvent::Closed(r) => Ev::Closed(r),
            other => panic!("unexpected {other:?}"),
        });
    }
    out
}

/// Body pieces of one handle, concatenated.
fn body(events: &[Ev], handle: u64) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Ev::Body(hh, d) if *hh == handle => Some(d.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn wire(c: &mut ClientConnection) -> String {
    let mut out = Vec::new();
    let _ = c.poll_transmit(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn greeted(greeting: &[u8]) -> ClientConnection {
    let mut c = ClientConnection::new(ClientConfig::new(), T0);
    c.receive(T0, greeting);
    let ev = drain(&mut c);
    assert!(matches!(ev.as_slice(), [Ev::Greeting(_)]), "{ev:?}");
    c
}

fn plaintext() -> ClientConnection {
    let mut config = ClientConfig::new();
    config.allow_plaintext_without_tls = true;
    let mut c = ClientConnection::new(config, T0);
    c.receive(T0, b"+OK ready\r\n");
    drain(&mut c);
    c
}

#[test]
fn r1939_gen_8_body_unstuffed_exactly() {
    let mut c = greeted(b"+OK ready\r\n");
    let r = h(c.send(T0, Command::Retr(2)).unwrap());
    assert_eq!(wire(&mut c), "RETR 2\r\n");
    c.receive(
        T0,
        b"+OK 38 octets\r\nSubject: dots\r\n\r\n..\r\n...\r\n..hidden\r\nend\r\n.\r\n",
    );
    let ev = drain(&mut c);
    assert_eq!(
        body(&ev, r),
        b"Subject: dots\r\n\r\n.\r\n..\r\n.hidden\r\nend\r\n"
    );
    assert_eq!(
        ev.first(),
        Some(&Ev::Status(r, true, "38 octets".into(), true))
    );
    assert_eq!(ev.last(), Some(&Ev::End(r)));
}

#[test]
fn r1939_gen_9_terminator_only_as_a_whole_line_any_chunking() {
    let reply = b"+OK\r\nx.\r\n..\r\n.\r\n";
    for chunk in 1..reply.len() {
        let mut c = greeted(b"+OK ready\r\n");
        let r = h(c.send(T0, Command::Retr(1)).unwrap());
        let mut ev = Vec::new();
        for piece in reply.chunks(chunk) {
            c.receive(T0, piece);
            ev.extend(drain(&mut c));
        }
        assert_eq!(body(&ev, r), b"x.\r\n.\r\n", "chunk {chunk}");
        assert_eq!(ev.last(), Some(&Ev::End(r)));
    }
}

#[test]
fn r1939_retr_3_err_to_a_multi_line_command_is_one_line() {
    let mut c = greeted(b"+OK ready\r\n");
    let r = h(c.send(T0, Command::Retr(9)).unwrap());
    c.receive(T0, b"-ERR no such message\r\n");
    assert_eq!(
        drain(&mut c),
        [Ev::Status(r, false, "no such message".into(), false)]
    );
    let n = h(c.send(T0, Command::Noop).unwrap());
    c.receive(T0, b"+OK\r\n");
    assert_eq!(drain(&mut c), [Ev::Status(n, true, String::new(), false)]);
    assert_eq!(c.outstanding(), 0);
}

#[test]
fn r1939_stat_3_r1939_gen_13_r1957_1_lenient_replies() {
    let mut c = greeted(b"+OK\r\n");
    let s = h(c.send(T0, Command::Stat).unwrap());
    c.receive(T0, b"+OK 2 320 messages here\r\n");
    assert_eq!(drain(&mut c), [Ev::Stat(s, 2, 320)]);
    let n = h(c.send(T0, Command::Noop).unwrap());
    c.receive(T0, b"+OK hello 99 100\r\n");
    assert_eq!(
        drain(&mut c),
        [Ev::Status(n, true, "hello 99 100".into(), false)]
    );
}

#[test]
fn r1939_gen_14_q8_decimal_with_leading_zeros_and_tabs() {
    let mut c = greeted(b"+OK\r\n");
    let l = h(c.send(T0, Command::List(None)).unwrap());
    c.receive(T0, b"+OK\r\n1 058\r\n2\t17\r\n.\r\n");
    let ev = drain(&mut c);
    assert_eq!(
        ev[1..],
        [Ev::Scan(l, 1, 58), Ev::Scan(l, 2, 17), Ev::End(l)]
    );
}

#[test]
fn r1939_uidl_9_10_duplicate_and_case_sensitive_uids() {
    let mut c = greeted(b"+OK\r\n");
    let u = h(c.send(T0, Command::Uidl(None)).unwrap());
    c.receive(T0, b"+OK\r\n1 abc\r\n2 abc\r\n3 ABC\r\n4 .dot\r\n.\r\n");
    let ev = drain(&mut c);
    assert_eq!(
        ev[1..],
        [
            Ev::Uid(u, 1, b"abc".to_vec()),
            Ev::Uid(u, 2, b"abc".to_vec()),
            Ev::Uid(u, 3, b"ABC".to_vec()),
            Ev::Uid(u, 4, b".dot".to_vec()),
            Ev::End(u)
        ]
    );
}

#[test]
fn rob_7_lf_only_server() {
    let mut c = greeted(b"+OK\n");
    let r = h(c.send(T0, Command::Retr(1)).unwrap());
    c.receive(T0, b"+OK\nSubject: x\n\nbody\n.\n");
    let ev = drain(&mut c);
    assert_eq!(body(&ev, r), b"Subject: x\n\nbody\n");
    assert_eq!(ev.last(), Some(&Ev::End(r)));
}

#[test]
fn rob_6_long_body_lines_stream_but_status_lines_are_bounded() {
    let mut c = greeted(b"+OK\r\n");
    let r = h(c.send(T0, Command::Retr(1)).unwrap());
    c.receive(T0, b"+OK\r\n");
    let mut total = 0;
    for _ in 0..1024 {
        c.receive(T0, &[b'x'; 1024]);
        total += body(&drain(&mut c), r).len();
    }
    c.receive(T0, b"\r\n.\r\n");
    let ev = drain(&mut c);
    total += body(&ev, r).len();
    assert_eq!(total, 1024 * 1024 + 2);
    assert_eq!(ev.last(), Some(&Ev::End(r)));
    c.send(T0, Command::Noop).unwrap();
    c.receive(T0, &[b'+'; 9000]);
    assert_eq!(
        drain(&mut c),
        [Ev::Closed(ClientCloseReason::Protocol(
            ProtocolError::LineTooLong
        ))]
    );
}

#[test]
fn rob_8_eof_in_the_middle_of_retr_is_not_a_complete_message() {
    let mut c = greeted(b"+OK\r\n");
    let r = h(c.send(T0, Command::Retr(1)).unwrap());
    c.receive(T0, b"+OK\r\nSubject: half\r\n");
    c.receive_eof(T0);
    let ev = drain(&mut c);
    assert!(!ev.contains(&Ev::End(r)));
    assert_eq!(ev.last(), Some(&Ev::Closed(ClientCloseReason::PeerClosed)));
}

#[test]
fn rob_9_err_greeting_is_a_temporary_refusal() {
    let mut c = ClientConnection::new(ClientConfig::new(), T0);
    c.receive(T0, b"-ERR [SYS/TEMP] busy\r\n");
    let mut got = Vec::new();
    while let Some(e) = c.poll_event() {
        got.push(match e {
            ClientEvent::Greeting(g) => {
                assert_eq!(
                    g.status.code.and_then(|c| c.known()),
                    Some(KnownCode::SysTemp)
                );
                "greeting".to_owned()
            }
            ClientEvent::Closed(r) => format!("{r:?}"),
            other => panic!("{other:?}"),
        });
    }
    assert_eq!(got, ["greeting", "GreetingRejected"]);
    assert_eq!(c.send(T0, Command::Noop), Err(ClientError::Closed));
}

#[test]
fn r1939_tmr_4_unsolicited_goodbye_then_eof() {
    let mut c = greeted(b"+OK\r\n");
    c.receive(T0, b"-ERR Disconnected for inactivity.\r\n");
    c.receive_eof(T0);
    assert_eq!(drain(&mut c), [Ev::Closed(ClientCloseReason::PeerClosed)]);
}

#[test]
fn silent_server_times_out() {
    let mut c = greeted(b"+OK\r\n");
    assert_eq!(c.poll_timeout(), None, "idle: no timer");
    c.send(Duration::from_secs(10), Command::Stat).unwrap();
    assert_eq!(c.poll_timeout(), Some(Duration::from_secs(190)));
    c.handle_timeout(Duration::from_secs(189));
    assert!(drain(&mut c).is_empty());
    c.handle_timeout(Duration::from_secs(190));
    assert_eq!(drain(&mut c), [Ev::Closed(ClientCloseReason::Timeout)]);
}

#[test]
fn r2449_pipe_2_pipelined_replies_matched_byte_by_byte() {
    let mut c = greeted(b"+OK\r\n");
    let capa = h(c.send(T0, Command::Capa).unwrap());
    c.receive(T0, b"+OK\r\nPIPELINING\r\nUIDL\r\n.\r\n");
    let ev = drain(&mut c);
    assert_eq!(ev.last(), Some(&Ev::End(capa)));
    assert!(c.capabilities().unwrap().pipelining);
    wire(&mut c);
    let a = h(c.send(T0, Command::Retr(1)).unwrap());
    let b = h(c.send(T0, Command::Dele(9)).unwrap());
    let d = h(c.send(T0, Command::Retr(2)).unwrap());
    assert_eq!(
        wire(&mut c),
        "RETR 1\r\nDELE 9\r\nRETR 2\r\n",
        "all three go out at once"
    );
    let reply = b"+OK\r\none\r\n.\r\n-ERR no such message\r\n+OK\r\n..two\r\n.\r\n";
    let mut ev = Vec::new();
    for byte in reply {
        c.receive(T0, std::slice::from_ref(byte));
        ev.extend(drain(&mut c));
    }
    assert_eq!(body(&ev, a), b"one\r\n");
    assert!(ev.contains(&Ev::Status(b, false, "no such message".into(), false)));
    assert_eq!(body(&ev, d), b".two\r\n");
    assert_eq!(ev.last(), Some(&Ev::End(d)));
}

#[test]
fn r2449_pipe_4_one_at_a_time_without_pipelining() {
    let mut c = greeted(b"+OK\r\n");
    c.send(T0, Command::Stat).unwrap();
    c.send(T0, Command::Noop).unwrap();
    assert_eq!(wire(&mut c), "STAT\r\n");
    c.receive(T0, b"+OK 0 0\r\n");
    drain(&mut c);
    assert_eq!(wire(&mut c), "NOOP\r\n");
}

#[test]
fn commands_wait_for_the_greeting() {
    let mut c = ClientConnection::new(ClientConfig::new(), T0);
    c.send(T0, Command::Capa).unwrap();
    assert_eq!(wire(&mut c), "");
    c.receive(T0, b"+OK hi\r\n");
    drain(&mut c);
    assert_eq!(wire(&mut c), "CAPA\r\n");
}

#[test]
fn r2449_capa_5_iana_2_capabilities_case_insensitive_unknown_kept() {
    let mut c = greeted(b"+OK\r\n");
    let capa = h(c.send(T0, Command::Capa).unwrap());
    c.receive(T0, b"+OK\r\nuidl\r\nSasl plain SCRAM-SHA-256 X-NEW\r\npipelining\r\nX-FOO bar\r\nIMPLEMENTATION Some Server 1.0\r\n.\r\n");
    let ev = drain(&mut c);
    assert!(ev.contains(&Ev::Cap(
        capa,
        "Other { tag: \"X-FOO\", args: \"bar\" }".into()
    )));
    let caps = c.capabilities().unwrap();
    assert!(caps.uidl && caps.pipelining);
    assert_eq!(
        caps.sasl,
        [
            pop3_proto::sasl::Mechanism::Plain,
            pop3_proto::sasl::Mechanism::ScramSha256
        ]
    );
    assert_eq!(caps.implementation.as_deref(), Some("Some Server 1.0"));
}

#[test]
fn r2595_stls_6_8_9_stls_flow() {
    let mut c = greeted(b"+OK\r\n");
    let capa = h(c.send(T0, Command::Capa).unwrap());
    c.receive(T0, b"+OK\r\nSTLS\r\nPIPELINING\r\nSASL PLAIN\r\n.\r\n");
    drain(&mut c);
    assert_eq!(capa, 0);
    wire(&mut c);
    let s = h(c.stls(T0).unwrap());
    c.send(T0, Command::Capa).unwrap();
    assert_eq!(
        wire(&mut c),
        "STLS\r\n",
        "R2595-STLS-6: nothing after STLS before the handshake"
    );
    c.receive(T0, b"+OK Begin TLS\r\n");
    assert_eq!(
        drain(&mut c),
        [Ev::Status(s, true, "Begin TLS".into(), false), Ev::StartTls]
    );
    assert!(!c.wants_read());
    assert_eq!(wire(&mut c), "");
    c.tls_established().unwrap();
    assert!(c.is_secure());
    assert!(
        c.capabilities().is_none(),
        "R2595-STLS-9: capabilities forgotten"
    );
    assert_eq!(wire(&mut c), "CAPA\r\n");
    assert_eq!(c.stls(T0), Err(ClientError::StlsNotAllowed));

    // R2595-STLS-8: a response injected after the STLS reply is a protocol error.
    let mut c = greeted(b"+OK\r\n");
    c.stls(T0).unwrap();
    c.receive(T0, b"+OK Begin TLS\r\n+OK injected\r\n");
    let ev = drain(&mut c);
    assert_eq!(
        ev,
        [Ev::Closed(ClientCloseReason::Protocol(
            ProtocolError::DataAfterStls
        ))]
    );
}

#[test]
fn r1939_apop_3_digest_vector_over_tls() {
    let mut c = greeted(b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n");
    assert_eq!(
        c.apop(T0, "mrose", b"tanstaaf"),
        Err(ClientError::ApopUnavailable),
        "not without TLS"
    );
    c.set_secure();
    c.apop(T0, "mrose", b"tanstaaf").unwrap();
    assert_eq!(
        wire(&mut c),
        "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"
    );
    c.receive(T0, b"+OK maildrop has 1 message\r\n");
    drain(&mut c);
    assert!(c.is_logged_in());
}

#[test]
fn r1939_apop_7_8_unsafe_or_missing_timestamps_disable_apop() {
    for greeting in [
        &b"+OK <\x80\xF1@x>\r\n"[..],
        b"+OK <a b@c>\r\n",
        b"+OK no timestamp\r\n",
    ] {
        let mut c = greeted(greeting);
        c.set_secure();
        assert_eq!(
            c.apop(T0, "mrose", b"tanstaaf"),
            Err(ClientError::ApopUnavailable)
        );
        assert_eq!(wire(&mut c), "");
    }
}

#[test]
fn r8314_mua_plaintext_credentials_need_tls_unless_allowed() {
    let mut c = greeted(b"+OK\r\n");
    assert_eq!(
        c.send(T0, Command::User("alice")),
        Err(ClientError::InsecureCredentials)
    );
    assert_eq!(
        c.send(T0, Command::Pass(Secret::new(b"x"))),
        Err(ClientError::InsecureCredentials)
    );
    assert_eq!(
        c.authenticate(T0, SaslClient::plain("", "alice", "x")),
        Err(ClientError::InsecureCredentials)
    );
    assert_eq!(wire(&mut c), "");
    let mut c = plaintext();
    c.send(T0, Command::User("alice")).unwrap();
    assert_eq!(wire(&mut c), "USER alice\r\n");
}

#[test]
fn r5034_cap_2_no_initial_response_without_sasl_in_capa() {
    let mut c = plaintext();
    c.authenticate(T0, SaslClient::plain("", "tim", "tanstaaftanstaaf"))
        .unwrap();
    assert_eq!(wire(&mut c), "AUTH PLAIN\r\n");
    c.receive(T0, b"+ \r\n");
    drain(&mut c);
    assert_eq!(wire(&mut c), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n");
    c.receive(T0, b"+OK\r\n");
    drain(&mut c);
    assert!(c.is_logged_in());
}

fn with_sasl_capa(c: &mut ClientConnection) {
    c.send(T0, Command::Capa).unwrap();
    c.receive(T0, b"+OK\r\nSASL PLAIN XOAUTH2\r\n.\r\n");
    drain(c);
    wire(c);
}

#[test]
fn r4616_1_r5034_auth_7_initial_response_inline_when_short() {
    let mut c = plaintext();
    with_sasl_capa(&mut c);
    c.authenticate(T0, SaslClient::plain("", "tim", "tanstaaftanstaaf"))
        .unwrap();
    assert_eq!(wire(&mut c), "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n");
}

#[test]
fn r5034_auth_7_xoa2_3_long_initial_response_after_the_empty_challenge() {
    let mut c = plaintext();
    with_sasl_capa(&mut c);
    let token = "t".repeat(1500);
    c.authenticate(T0, SaslClient::xoauth2("someone@example.com", &token))
        .unwrap();
    assert_eq!(wire(&mut c), "AUTH XOAUTH2\r\n");
    c.receive(T0, b"+\r\n"); // R5034-SYN-2: a bare '+' is an empty challenge too
    drain(&mut c);
    let line = wire(&mut c);
    assert!(line.len() > 2000 && line.ends_with("\r\n") && !line.contains(' '));
}

#[test]
fn r5034_auth_11_undecodable_challenge_is_cancelled() {
    let mut c = plaintext();
    c.authenticate(T0, SaslClient::login("tim", "x")).unwrap();
    assert_eq!(wire(&mut c), "AUTH LOGIN\r\n");
    c.receive(T0, b"+ %%%\r\n");
    drain(&mut c);
    assert_eq!(wire(&mut c), "*\r\n");
    c.receive(T0, b"-ERR cancelled\r\n");
    let ev = drain(&mut c);
    assert!(
        matches!(ev.as_slice(), [Ev::Status(_, false, _, false)]),
        "{ev:?}"
    );
    assert!(!c.is_logged_in());
}

#[test]
fn rlogin_2_login_ignores_challenge_text() {
    let mut c = plaintext();
    c.authenticate(T0, SaslClient::login("tim", "tanstaaftanstaaf"))
        .unwrap();
    wire(&mut c);
    c.receive(T0, b"+ VXNlciBOYW1lAA==\r\n");
    drain(&mut c);
    assert_eq!(wire(&mut c), "dGlt\r\n");
    c.receive(T0, b"+ Zm9v\r\n");
    drain(&mut c);
    assert_eq!(wire(&mut c), "dGFuc3RhYWZ0YW5zdGFhZg==\r\n");
}

#[test]
fn continuation_outside_auth_is_a_protocol_error() {
    let mut c = greeted(b"+OK\r\n");
    c.send(T0, Command::Stat).unwrap();
    c.receive(T0, b"+ abc\r\n");
    assert_eq!(
        drain(&mut c),
        [Ev::Closed(ClientCloseReason::Protocol(
            ProtocolError::UnexpectedContinuation
        ))]
    );
}

#[test]
fn quit_closes_after_the_reply() {
    let mut c = greeted(b"+OK\r\n");
    let q = h(c.send(T0, Command::Quit).unwrap());
    c.receive(T0, b"+OK bye\r\n");
    assert_eq!(
        drain(&mut c),
        [
            Ev::Status(q, true, "bye".into(), false),
            Ev::Closed(ClientCloseReason::Quit)
        ]
    );
    assert!(c.is_closed());
}

#[test]
fn auth_send_goes_through_authenticate() {
    let mut c = plaintext();
    let cmd = Command::Auth {
        mechanism: "PLAIN",
        initial_response: None,
    };
    assert_eq!(c.send(T0, cmd), Err(ClientError::UseAuthenticate));
}

#[test]
fn r2449_len_4_r1939_gen_3_command_lines_are_short_and_canonical() {
    let mut c = plaintext();
    let long = "u".repeat(260);
    assert_eq!(
        c.send(T0, Command::User(&long)),
        Err(ClientError::CommandTooLong)
    );
    c.send(T0, Command::Top { msg: 1, lines: 0 }).unwrap();
    let line = wire(&mut c);
    assert_eq!(line, "TOP 1 0\r\n");
}
