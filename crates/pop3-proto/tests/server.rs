//! Server conformance tests: one test (or more) per server row of
//! `shared/notes/pop3-conformance-checklist.md`, named by its ID.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use pop3_proto::{
    response::Expire,
    sasl::Mechanism,
    server::{CloseReason, CommitOutcome, ServerConfig, SessionState, TlsMode},
};

fn logged_in() -> Harness {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    h.login_alice();
    h
}

fn lines(s: &str) -> Vec<&str> {
    s.split_inclusive("\r\n").collect()
}

// Also covers: R1939-GEN-1, R1939-ST-1, R1939-APOP-1, R2449-GRAM-3.
#[test]
fn r1939_gen_1_st_1_greeting_first_and_one_line() {
    let mut h = Harness::new(plaintext_config());
    let greeting = h.take_output();
    assert_eq!(
        greeting,
        "+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n"
    );
    assert_eq!(h.conn.state(), SessionState::Authorization);
    assert!(h.send(b"STAT\r\n").starts_with("-ERR"));
}

#[test]
fn r1939_gen_2_keywords_case_insensitive() {
    let mut h = logged_in();
    assert_eq!(h.send(b"stat\r\n"), "+OK 5 3170\r\n");
    assert_eq!(h.send(b"StAt\r\n"), "+OK 5 3170\r\n");
}

// Also covers: R1939-GEN-5, R1939-GEN-6, R2449-GRAM-2, R2449-LEN-3, R1957-1.
#[test]
fn r1939_gen_5_gen_6_every_status_line_is_well_formed_and_short() {
    let mut h = Harness::new(plaintext_config());
    let mut all = h.take_output();
    let long_user = format!("USER {}\r\n", "a".repeat(248));
    for cmd in [
        long_user.as_bytes(),
        b"FOO\r\n",
        b"PASS wrong\r\n",
        b"USER alice\r\nPASS secret\r\n",
        b"STAT\r\nLIST 9\r\nUIDL 1\r\nDELE 1\r\nRSET\r\nNOOP\r\nLANG en\r\n",
    ] {
        all += &h.send(cmd);
    }
    for line in lines(&all) {
        assert!(line.len() <= 512, "{line}");
        assert!(
            line.starts_with("+OK") || line.starts_with("-ERR"),
            "not a status line: {line:?}"
        );
        // R1957-1: always SP + text after the indicator.
        assert!(
            line.starts_with("+OK ") || line.starts_with("-ERR "),
            "{line:?}"
        );
    }
}

#[test]
fn r1939_gen_7_retr_is_byte_stuffed() {
    let mut h = logged_in();
    assert_eq!(
        h.send(b"RETR 2\r\n"),
        "+OK 38 octets\r\nSubject: dots\r\n\r\n..\r\n...\r\n..hidden\r\nend\r\n.\r\n"
    );
}

#[test]
fn r1939_gen_10_bad_commands_get_err_and_session_continues() {
    let mut h = logged_in();
    for cmd in [
        &b"FOO\r\n"[..],
        b"RETR\r\n",
        b"RETR x\r\n",
        b"TOP 1\r\n",
        b"STAT 1\r\n",
    ] {
        let out = h.send(cmd);
        assert!(out.starts_with("-ERR ") && lines(&out).len() == 1, "{out}");
    }
    assert_eq!(h.send(b"NOOP\r\n"), "+OK No operation.\r\n");
}

#[test]
fn r1939_gen_11_state_matrix() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    for cmd in [
        "STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 0", "UIDL",
    ] {
        let out = h.send(format!("{cmd}\r\n").as_bytes());
        assert!(out.starts_with("-ERR"), "{cmd} in AUTHORIZATION: {out}");
    }
    h.login_alice();
    for cmd in [
        "USER alice",
        "PASS secret",
        "APOP a b",
        "AUTH PLAIN",
        "AUTH",
        "STLS",
        "UTF8",
    ] {
        let out = h.send(format!("{cmd}\r\n").as_bytes());
        assert!(out.starts_with("-ERR"), "{cmd} in TRANSACTION: {out}");
    }
    assert_eq!(h.conn.state(), SessionState::Transaction);
}

#[test]
fn r1939_st_3_login_enters_transaction_nothing_deleted() {
    let mut h = logged_in();
    assert_eq!(h.conn.state(), SessionState::Transaction);
    assert_eq!(h.send(b"STAT\r\n"), "+OK 5 3170\r\n");
}

// Also covers: R1939-ST-4, R1939-PASS-3, R2449-RC-IU-1, R3206-AUTH-1.
#[test]
fn r1939_st_4_r2449_rc_iu_1_locked_maildrop_is_in_use_wrong_password_is_auth() {
    let mut h = Harness::new(plaintext_config());
    h.locked.push("alice");
    h.take_output();
    let out = h.send(b"USER alice\r\nPASS secret\r\n");
    assert!(
        out.ends_with("-ERR [IN-USE] Maildrop is locked by another session.\r\n"),
        "{out}"
    );
    let out = h.send(b"USER alice\r\nPASS wrong\r\n");
    assert!(
        out.ends_with("-ERR [AUTH] Authentication failed.\r\n"),
        "{out}"
    );
}

#[test]
fn r1939_st_6_r5034_auth_19_retry_after_failure() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    assert!(
        h.send(b"USER alice\r\nPASS wrong\r\n")
            .contains("-ERR [AUTH]")
    );
    assert!(
        h.send(b"AUTH PLAIN AGFsaWNlAHdyb25n\r\n")
            .contains("-ERR [AUTH]")
    );
    h.login_alice();
}

#[test]
fn r1939_st_7_r1939_list_2_numbering_and_sizes() {
    let mut h = logged_in();
    assert_eq!(
        h.send(b"LIST\r\n"),
        "+OK 5 messages (3170 octets)\r\n1 58\r\n2 38\r\n3 29\r\n4 17\r\n5 3028\r\n.\r\n"
    );
}

#[test]
fn r1939_st_8_quit_in_authorization_commits_nothing() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    assert_eq!(
        h.send(b"USER alice\r\nQUIT\r\n"),
        "+OK Send PASS.\r\n+OK Logging out.\r\n"
    );
    assert!(h.seen.commits.is_empty());
    assert_eq!(h.seen.closed, Some(CloseReason::Quit));
    assert!(h.conn.is_closed());
}

#[test]
fn r1939_tmr_1_idle_599s_is_fine_and_minimum_is_enforced() {
    let mut config = plaintext_config();
    config.autologout = Duration::from_secs(30); // raised to 600 s
    let mut h = Harness::new(config);
    h.login_alice();
    assert_eq!(
        h.conn.poll_timeout(),
        Some(h.now + Duration::from_secs(600))
    );
    h.advance(Duration::from_secs(599));
    assert_eq!(h.send(b"NOOP\r\n"), "+OK No operation.\r\n");
}

#[test]
fn r1939_tmr_2_any_command_resets_the_timer() {
    let mut h = logged_in();
    for _ in 0..12 {
        assert_eq!(h.advance(Duration::from_secs(300)), "");
        assert_eq!(h.send(b"NOOP\r\n"), "+OK No operation.\r\n");
    }
    assert!(!h.conn.is_closed());
}

#[test]
fn r1939_tmr_3_expiry_closes_silently_without_update() {
    let mut h = logged_in();
    assert_eq!(h.send(b"DELE 1\r\nDELE 2\r\n").matches("+OK").count(), 2);
    // Early and repeated calls do nothing.
    assert_eq!(h.advance(Duration::from_secs(1)), "");
    assert!(!h.conn.is_closed());
    assert_eq!(h.advance(Duration::from_secs(600)), "");
    assert!(h.conn.is_closed());
    assert_eq!(h.seen.closed, Some(CloseReason::Autologout));
    assert!(h.seen.commits.is_empty());
    assert_eq!(h.conn.poll_timeout(), None);
}

#[test]
fn autologout_waits_while_the_application_is_busy() {
    let mut h = logged_in();
    h.hold_commit = true;
    h.send(b"QUIT\r\n");
    assert_eq!(h.conn.state(), SessionState::Update);
    h.advance(Duration::from_secs(601));
    assert!(!h.conn.is_closed(), "a commit in progress is not idleness");
    h.finish_commit();
    assert_eq!(h.seen.closed, Some(CloseReason::Quit));
}

// Also covers: R1939-STAT-1, R1939-STAT-2.
#[test]
fn r1939_stat_1_stat_2_deleted_excluded() {
    let mut h = logged_in();
    assert_eq!(h.send(b"STAT\r\n"), "+OK 5 3170\r\n");
    h.send(b"DELE 1\r\n");
    assert_eq!(h.send(b"STAT\r\n"), "+OK 4 3112\r\n");
}

#[test]
fn r1939_list_1_empty_maildrop_is_a_positive_empty_listing() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    h.send(b"USER empty\r\nPASS secret\r\n");
    assert_eq!(h.send(b"LIST\r\n"), "+OK 0 messages (0 octets)\r\n.\r\n");
    assert_eq!(
        h.send(b"UIDL\r\n"),
        "+OK Unique-ID listing follows.\r\n.\r\n"
    );
    assert_eq!(h.send(b"STAT\r\n"), "+OK 0 0\r\n");
}

#[test]
fn r1939_list_3_list_4_single_message() {
    let mut h = logged_in();
    assert_eq!(h.send(b"LIST 2\r\n"), "+OK 2 38\r\n");
    for cmd in ["LIST 6", "LIST 0", "LIST -1", "LIST 1x"] {
        let out = h.send(format!("{cmd}\r\n").as_bytes());
        assert!(
            out.starts_with("-ERR") && lines(&out).len() == 1,
            "{cmd}: {out}"
        );
    }
    h.send(b"DELE 2\r\n");
    assert!(h.send(b"LIST 2\r\n").starts_with("-ERR"));
}

#[test]
fn r1939_list_5_no_renumbering_after_dele() {
    let mut h = logged_in();
    h.send(b"DELE 2\r\n");
    assert_eq!(
        h.send(b"LIST\r\n"),
        "+OK 4 messages (3132 octets)\r\n1 58\r\n3 29\r\n4 17\r\n5 3028\r\n.\r\n"
    );
}

#[test]
fn r1939_list_6_r1939_msg_2_sizes_equal_unstuffed_retr_payload() {
    let mut h = logged_in();
    for n in 1..=5 {
        let list = h.send(format!("LIST {n}\r\n").as_bytes());
        let size: usize = list.trim_end().rsplit(' ').next().unwrap().parse().unwrap();
        let retr = h.send_bytes(format!("RETR {n}\r\n").as_bytes());
        let body_start = retr.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
        let body = &retr[body_start..retr.len() - 3];
        let mut unstuffed = Vec::new();
        for line in body.split_inclusive(|&b| b == b'\n') {
            unstuffed.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        assert_eq!(unstuffed.len(), size, "message {n}");
    }
}

#[test]
fn r1939_retr_1_retr_2_deleted_message_is_a_single_line_error() {
    let mut h = logged_in();
    let out = h.send(b"RETR 1\r\n");
    assert_eq!(
        out,
        format!("+OK 58 octets\r\n{}.\r\n", String::from_utf8_lossy(M1))
    );
    h.send(b"DELE 1\r\n");
    assert_eq!(
        h.send(b"RETR 1\r\nNOOP\r\n"),
        "-ERR No such message.\r\n+OK No operation.\r\n"
    );
}

#[test]
fn r1939_dele_2_every_reference_to_a_deleted_message_fails() {
    let mut h = logged_in();
    assert_eq!(h.send(b"DELE 1\r\n"), "+OK Message 1 deleted.\r\n");
    for cmd in ["RETR 1", "LIST 1", "TOP 1 0", "UIDL 1", "DELE 1"] {
        assert!(
            h.send(format!("{cmd}\r\n").as_bytes()).starts_with("-ERR"),
            "{cmd}"
        );
    }
}

#[test]
fn r1939_dele_1_r1939_upd_2_dropped_connection_deletes_nothing() {
    let mut h = logged_in();
    h.send(b"DELE 1\r\n");
    h.conn.receive_eof(h.now);
    h.drive();
    assert_eq!(h.seen.closed, Some(CloseReason::PeerClosed));
    assert!(h.seen.commits.is_empty());
}

// Also covers: R1939-NOOP-1, R1939-RSET-1.
#[test]
fn r1939_noop_1_rset_1() {
    let mut h = logged_in();
    assert_eq!(h.send(b"NOOP\r\n"), "+OK No operation.\r\n");
    h.send(b"DELE 1\r\nDELE 2\r\n");
    assert_eq!(h.send(b"RSET\r\n"), "+OK 5 messages (3170 octets)\r\n");
    assert_eq!(h.send(b"STAT\r\n"), "+OK 5 3170\r\n");
    assert!(h.send(b"RETR 1\r\n").starts_with("+OK 58 octets"));
}

#[test]
fn r1939_upd_1_quit_commits_the_marked_messages() {
    let mut h = logged_in();
    h.send(b"DELE 1\r\nDELE 3\r\n");
    assert_eq!(h.send(b"QUIT\r\n"), "+OK Logging out.\r\n");
    assert_eq!(h.seen.commits, vec![vec![0, 2]]);
    assert_eq!(h.seen.closed, Some(CloseReason::Quit));
}

#[test]
fn r1939_upd_5_ok_only_after_the_commit_is_done() {
    let mut h = logged_in();
    h.hold_commit = true;
    h.send(b"DELE 1\r\n");
    assert_eq!(
        h.send(b"QUIT\r\n"),
        "",
        "nothing may be sent before the commit"
    );
    assert_eq!(h.conn.state(), SessionState::Update);
    h.finish_commit();
    assert_eq!(h.take_output(), "+OK Logging out.\r\n");
}

#[test]
fn r1939_upd_3_failed_commit_is_reported() {
    let mut h = logged_in();
    h.commit_outcome = CommitOutcome::Failed;
    h.send(b"DELE 1\r\nDELE 2\r\n");
    assert_eq!(
        h.send(b"QUIT\r\n"),
        "-ERR [SYS/TEMP] Some deleted messages not removed.\r\n"
    );
    assert!(h.conn.is_closed());
}

#[test]
fn eof_after_pipelined_quit_still_commits() {
    let mut h = logged_in();
    h.conn.receive(h.now, b"DELE 2\r\nQUIT\r\n");
    h.conn.receive_eof(h.now);
    h.drive();
    assert_eq!(h.seen.commits, vec![vec![1]]);
    assert_eq!(h.seen.closed, Some(CloseReason::Quit));
}

#[test]
fn r1939_top_1_argument_errors() {
    let mut h = logged_in();
    for cmd in ["TOP 1", "TOP 1 -1", "TOP 1 x", "TOP 9 0"] {
        assert!(
            h.send(format!("{cmd}\r\n").as_bytes()).starts_with("-ERR"),
            "{cmd}"
        );
    }
}

#[test]
fn r1939_top_2_to_6() {
    let mut h = logged_in();
    let ok = "+OK Top of message follows.\r\n";
    assert_eq!(
        h.send(b"TOP 1 2\r\n"),
        format!("{ok}From: a@example.com\r\nSubject: one\r\n\r\nline1\r\nline2\r\n.\r\n")
    );
    assert_eq!(
        h.send(b"TOP 1 0\r\n"),
        format!("{ok}From: a@example.com\r\nSubject: one\r\n\r\n.\r\n")
    );
    let retr = h.send(b"RETR 1\r\n");
    let top = h.send(b"TOP 1 100\r\n");
    assert_eq!(top[ok.len()..], retr["+OK 58 octets\r\n".len()..]);
    let huge = h.send(b"TOP 5 4294967296\r\n");
    assert!(huge.ends_with(&format!("{}\r\n.\r\n", "A".repeat(3000))));
    assert_eq!(
        h.send(b"TOP 2 3\r\n"),
        format!("{ok}Subject: dots\r\n\r\n..\r\n...\r\n..hidden\r\n.\r\n")
    );
    assert_eq!(
        h.send(b"TOP 4 0\r\n"),
        format!("{ok}Subject: nobody\r\n\r\n.\r\n")
    );
    assert_eq!(
        h.send(b"RETR 4\r\n"),
        "+OK 17 octets\r\nSubject: nobody\r\n.\r\n"
    );
}

// Also covers: R1939-UIDL-1, R1939-UIDL-2, R1939-UIDL-4, R1939-UIDL-8.
#[test]
fn r1939_uidl_1_2_8_listing_format() {
    let mut h = logged_in();
    let all = h.send(b"UIDL\r\n");
    let body: Vec<&str> = lines(&all)[1..].to_vec();
    assert_eq!(body.len(), 6);
    for (i, line) in body[..5].iter().enumerate() {
        assert_eq!(*line, format!("{} uid-alice-{i}\r\n", i + 1));
    }
    assert_eq!(h.send(b"UIDL 2\r\n"), "+OK 2 uid-alice-1\r\n");
    h.send(b"DELE 3\r\n");
    assert_eq!(lines(&h.send(b"UIDL\r\n")).len(), 1 + 4 + 1);
    assert!(h.send(b"UIDL 3\r\n").starts_with("-ERR"));
}

// Also covers: R1939-USER-2, R3206-AUTH-3.
#[test]
fn r1939_user_2_unknown_user_gets_the_same_failure_as_a_wrong_password() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    let unknown = h.send(b"USER nosuchuser\r\nPASS x\r\n");
    let wrong = h.send(b"USER alice\r\nPASS x\r\n");
    assert_eq!(unknown, wrong);
    assert_eq!(
        unknown,
        "+OK Send PASS.\r\n-ERR [AUTH] Authentication failed.\r\n"
    );
}

#[test]
fn r1939_pass_1_pass_needs_a_preceding_user() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    assert!(h.send(b"PASS secret\r\n").starts_with("-ERR"));
    let out = h.send(b"USER alice\r\nPASS wrong\r\nPASS secret\r\n");
    assert_eq!(
        lines(&out)[1..],
        [
            "-ERR [AUTH] Authentication failed.\r\n",
            "-ERR No user name given: send USER first.\r\n"
        ]
    );
}

#[test]
fn r1939_pass_2_password_with_space() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    assert!(
        h.send(b"USER spaced\r\nPASS pass word\r\n")
            .ends_with("+OK Logged in, 1 messages (58 octets)\r\n")
    );
}

// Also covers: R1939-APOP-1, R1939-APOP-4, R1939-APOP-5.
#[test]
fn r1939_apop_1_4_5_apop_login() {
    let mut h = Harness::new(plaintext_config());
    let greeting = h.take_output();
    assert!(greeting.contains("<1896.697170952@dbc.mtview.ca.us>"));
    let bad = h.send(b"APOP mrose c4c9334bac560ecc979e58001b3e22fc\r\n");
    assert_eq!(bad, "-ERR [AUTH] Authentication failed.\r\n");
    let good = h.send(b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n");
    assert!(good.starts_with("+OK Logged in"), "{good}");
    assert!(
        h.send(b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n")
            .starts_with("-ERR")
    );
}

#[test]
fn apop_is_refused_without_a_timestamp() {
    let mut h = Harness::with_timestamp(plaintext_config(), None);
    assert_eq!(h.take_output(), "+OK POP3 server ready\r\n");
    assert_eq!(
        h.send(b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"),
        "-ERR APOP is not offered.\r\n"
    );
}

#[test]
fn r1939_msg_1_3_4_line_ends_normalised_then_stuffed() {
    let mut h = logged_in();
    assert_eq!(
        h.send(b"RETR 3\r\n"),
        "+OK 29 octets\r\nSubject: lf\r\n\r\nbody1\r\nbody2\r\n.\r\n"
    );
}

#[test]
fn rob_10_nul_and_8bit_pass_through() {
    let mut h = logged_in();
    let out = h.send_bytes(b"RETR 5\r\n");
    assert!(out.windows(10).any(|w| w == b"caf\xE9 \x00 x\r\n"));
}

#[test]
fn chunking_of_the_stored_message_does_not_change_the_wire() {
    let mut reference = None;
    for chunk in [1, 2, 3, 7, 64, 4096] {
        let mut h = logged_in();
        h.chunk = chunk;
        let out = h.send_bytes(b"RETR 1\r\nRETR 2\r\nRETR 3\r\nRETR 4\r\nRETR 5\r\nTOP 2 1\r\n");
        match &reference {
            None => reference = Some(out),
            Some(r) => assert_eq!(&out, r, "chunk {chunk}"),
        }
    }
}

// Also covers: R2449-LEN-1, ROB-1, R1939-GEN-4.
#[test]
fn r2449_len_1_rob_1_line_limits() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    // 255 octets including CRLF: accepted.
    let ok = format!("USER {}\r\n", "a".repeat(248));
    assert_eq!(ok.len(), 255);
    assert_eq!(h.send(ok.as_bytes()), "+OK Send PASS.\r\n");
    let too_long = format!("USER {}\r\n", "a".repeat(249));
    assert_eq!(h.send(too_long.as_bytes()), "-ERR Line too long.\r\n");
    // 100 KiB without LF, then more: one -ERR, bounded memory, the session goes on.
    for _ in 0..100 {
        h.conn.receive(h.now, &[b'A'; 1024]);
        assert!(h.conn.wants_read());
    }
    assert_eq!(
        h.send(b"\r\nCAPA\r\n").lines().next(),
        Some("-ERR Line too long.")
    );
    assert!(!h.conn.is_closed());
}

#[test]
fn rob_2_bare_lf_accepted_bare_cr_not() {
    let mut h = logged_in();
    assert_eq!(h.send(b"NOOP\n"), "+OK No operation.\r\n");
    assert_eq!(h.send(b"NOOP\rSTAT\r\n"), "-ERR Unknown command.\r\n");
}

#[test]
fn rob_3_nul_in_a_command_is_rejected() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    assert_eq!(h.send(b"USER al\x00ice\r\n"), "-ERR Invalid argument.\r\n");
    assert_eq!(
        h.send(b"PASS secret\r\n"),
        "-ERR No user name given: send USER first.\r\n"
    );
}

#[test]
fn rob_5_message_number_syntax() {
    let mut h = logged_in();
    for cmd in [
        "RETR 99999999999999999999",
        "RETR +1",
        "RETR 0x1",
        "RETR ",
        "RETR 0",
    ] {
        assert!(
            h.send(format!("{cmd}\r\n").as_bytes()).starts_with("-ERR"),
            "{cmd}"
        );
    }
    assert!(h.send(b"LIST 01\r\n").starts_with("+OK 1 58"));
}

#[test]
fn r2449_pipe_1_rob_4_pipelined_and_byte_at_a_time_give_identical_answers() {
    let script =
        b"USER alice\r\nPASS secret\r\nSTAT\r\nLIST 1\r\nUIDL 1\r\nRETR 2\r\nNOOP\r\nQUIT\r\n";
    let mut whole = Harness::new(plaintext_config());
    let one_write = whole.send(script);
    let mut bytewise = Harness::new(plaintext_config());
    let mut out = String::new();
    for b in script {
        out += &bytewise.send(std::slice::from_ref(b));
    }
    assert_eq!(one_write, out);
    let greeting = "+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n";
    assert_eq!(
        one_write,
        format!(
            "{greeting}+OK Send PASS.\r\n+OK Logged in, 5 messages (3170 octets)\r\n+OK 5 3170\r\n+OK 1 58\r\n+OK 1 uid-alice-0\r\n\
             +OK 38 octets\r\nSubject: dots\r\n\r\n..\r\n...\r\n..hidden\r\nend\r\n.\r\n+OK No operation.\r\n+OK Logging out.\r\n"
        )
    );
}

#[test]
fn r2449_pipe_3_a_thousand_pipelined_retrs_are_answered_in_order() {
    let one = logged_in().send_bytes(b"RETR 5\r\n");
    let out = logged_in().send_bytes(&b"RETR 5\r\n".repeat(1000));
    assert_eq!(out.len(), one.len() * 1000);
    assert!(out.chunks(one.len()).all(|c| c == one.as_slice()));
}

#[test]
fn output_high_water_stops_reading_until_drained() {
    let mut h = logged_in();
    h.conn.receive(h.now, &b"LIST 1\r\n".repeat(20_000));
    // Answer no events and never drain: the machine must stop answering at the mark.
    while h.conn.poll_event().is_some() {}
    let mut out = Vec::new();
    let n = h.conn.poll_transmit(&mut out);
    assert!(
        (64 * 1024..64 * 1024 + 64).contains(&n),
        "buffered {n} bytes"
    );
    assert!(!h.conn.wants_read(), "buffered input is at its limit");
    h.drive();
    let rest = h.take_output();
    assert_eq!((n + rest.len()) / "+OK 1 58\r\n".len(), 20_000);
}

#[test]
fn large_listing_is_produced_in_bounded_pieces() {
    let mut config = plaintext_config();
    config.user_pass = true;
    let mut h = Harness::new(config);
    h.users[1].messages = vec![b"x\r\n".to_vec(); 100_000];
    h.take_output();
    h.send(b"USER empty\r\nPASS secret\r\n");
    h.conn.receive(h.now, b"UIDL\r\n");
    while h.conn.poll_event().is_some() {}
    let mut total = 0;
    let mut pieces = 0;
    loop {
        let mut buf = Vec::new();
        let n = h.conn.poll_transmit(&mut buf);
        if n == 0 {
            break;
        }
        assert!(n <= 16 * 1024 + 100, "piece of {n} bytes");
        total += n;
        pieces += 1;
    }
    assert!(pieces > 100);
    assert!(total > 100_000 * 10);
}

// Also covers: R2449-CAPA-1, R2449-CAPA-2, R2449-CAPA-3, R2449-CAPA-9, R2449-IMPL-1, R2449-RC-4, R3206-AUTH-2, R5034-CAP-1, R5034-CAP-4, R1957-2, R2449-EXP-2.
#[test]
fn r2449_capa_1_2_3_r5034_cap_4_capabilities_in_both_states() {
    let mut config = plaintext_config();
    config.implementation = Some("pop3-proto test".into());
    config.login_delay = Some(60);
    config.expire = Some(Expire::Never);
    let mut h = Harness::new(config);
    h.take_output();
    let before = h.send(b"CAPA\r\n");
    h.login_alice();
    let after = h.send(b"CAPA\r\n");
    for capa in [&before, &after] {
        let l = lines(capa);
        assert_eq!(l[0], "+OK Capability list follows.\r\n");
        assert_eq!(*l.last().unwrap(), ".\r\n");
        for line in &l[1..l.len() - 1] {
            let tag = line.trim_end().split(' ').next().unwrap();
            assert!(
                tag.bytes().all(|b| (0x21..=0x7E).contains(&b) && b != b'.'),
                "{line}"
            );
            assert!(line.len() <= 512);
        }
    }
    let tags = |s: &str| -> Vec<String> {
        lines(s)[1..]
            .iter()
            .map(|l| l.trim_end().split(' ').next().unwrap().to_owned())
            .collect()
    };
    for tag in tags(&before) {
        assert!(tags(&after).contains(&tag), "{tag} missing after login");
    }
    for required in [
        "TOP",
        "UIDL",
        "USER",
        "SASL",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        "PIPELINING",
        "UTF8",
        "LANG",
        "LOGIN-DELAY",
        "EXPIRE",
    ] {
        assert!(tags(&before).iter().any(|t| t == required), "{required}");
    }
    // R2449-IMPL-1: IMPLEMENTATION after login only, by default. R2449-CAPA-9: no APOP tag.
    assert!(!before.contains("IMPLEMENTATION"));
    assert!(after.contains("IMPLEMENTATION pop3-proto test\r\n"));
    assert!(!before.contains("APOP") && !after.contains("APOP"));
}

// Also covers: R5034-AUTH-21, R2595-STLS-2, R2595-STLS-10, R2595-TLS-2, R8314-SRV-7, R1939-USER-3, R4616-6, RLOGIN-3, R5034-CAP-3.
#[test]
fn r5034_auth_21_r2595_stls_2_plaintext_hidden_until_tls() {
    let mut config = ServerConfig::new();
    config.tls = TlsMode::Stls;
    config.sasl_mechanisms = vec![Mechanism::ScramSha256, Mechanism::Plain, Mechanism::Login];
    let mut h = Harness::new(config);
    h.take_output();
    let pre = h.send(b"CAPA\r\n");
    assert!(pre.contains("SASL SCRAM-SHA-256\r\n"), "{pre}");
    assert!(!lines(&pre).contains(&"USER\r\n") && !pre.contains("PLAIN") && !pre.contains("LOGIN"));
    assert!(pre.contains("STLS\r\n"));
    // Valid and invalid credentials get byte-identical refusals (R8314-SRV-7).
    let right = h.send(b"USER alice\r\nPASS secret\r\n");
    let wrong = h.send(b"USER alice\r\nPASS wrong\r\n");
    assert_eq!(right, wrong);
    let refusal =
        "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n";
    assert_eq!(right, format!("{refusal}{refusal}"));
    assert_eq!(h.send(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"), refusal);
    assert_eq!(h.send(b"AUTH LOGIN\r\n"), refusal);
    assert_eq!(h.seen.password_checks, 0);
    assert_eq!(h.send(b"STLS\r\n"), "+OK Begin TLS negotiation now.\r\n");
    h.finish_tls();
    let post = h.send(b"CAPA\r\n");
    assert!(
        lines(&post).contains(&"USER\r\n") && post.contains("SASL SCRAM-SHA-256 PLAIN LOGIN\r\n")
    );
    assert!(!post.contains("STLS"), "R2595-STLS-2: no STLS after TLS");
    assert!(
        h.send(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
            .starts_with("+OK Logged in")
    );
}

#[test]
fn r2595_stls_3_5_7_stls_rules() {
    let mut config = ServerConfig::new();
    config.tls = TlsMode::Stls;
    let mut h = Harness::new(config);
    h.take_output();
    // R2595-STLS-7: commands pipelined after STLS are discarded, never run inside TLS.
    assert_eq!(
        h.send(b"STLS\r\nCAPA\r\n"),
        "+OK Begin TLS negotiation now.\r\n"
    );
    assert!(!h.conn.wants_read(), "reading pauses for the handshake");
    h.conn.receive(h.now, b"NOOP\r\n");
    h.finish_tls();
    assert_eq!(h.take_output(), "");
    assert_eq!(h.conn.state(), SessionState::Authorization);
    assert!(h.conn.is_secure());
    // R2595-STLS-5: no second STLS.
    assert_eq!(h.send(b"STLS\r\n"), "-ERR TLS is already active.\r\n");
    h.login_alice();
    assert!(h.send(b"STLS\r\n").starts_with("-ERR"));
}

// Also covers: R8314-SRV-2, R2595-STLS-5, R8314-IMP-2.
#[test]
fn r8314_srv_2_stls_refused_when_not_offered_and_on_implicit_tls() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    assert!(!h.send(b"CAPA\r\n").contains("STLS"));
    assert_eq!(h.send(b"STLS\r\n"), "-ERR STLS is not offered.\r\n");
    let mut config = ServerConfig::new();
    config.tls = TlsMode::Implicit;
    let mut h = Harness::new(config);
    h.take_output();
    let capa = h.send(b"CAPA\r\n");
    assert!(
        !capa.contains("STLS")
            && lines(&capa).contains(&"USER\r\n")
            && capa.contains("SASL PLAIN LOGIN")
    );
    assert!(h.send(b"STLS\r\n").starts_with("-ERR"));
}

#[test]
fn r6856_stls_1_no_stls_after_utf8() {
    let mut config = ServerConfig::new();
    config.tls = TlsMode::Stls;
    let mut h = Harness::new(config);
    h.take_output();
    assert_eq!(h.send(b"UTF8\r\n"), "+OK UTF8 enabled.\r\n");
    assert!(h.conn.is_utf8());
    assert_eq!(
        h.send(b"STLS\r\n"),
        "-ERR STLS is not allowed after UTF8.\r\n"
    );
}

// Also covers: R6856-UTF8-1, R6856-LANG-1, R6856-LANG-2, R6856-LANG-3, R6856-LANG-4.
#[test]
fn r6856_utf8_1_lang_1_to_4() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    assert!(h.send(b"CAPA\r\n").contains("UTF8 USER\r\nLANG\r\n"));
    assert!(h.send(b"UTF8 x\r\n").starts_with("-ERR"));
    assert_eq!(
        h.send(b"LANG\r\n"),
        "+OK Language listing follows.\r\nen English\r\n.\r\n"
    );
    assert_eq!(
        h.send(b"LANG en\r\n"),
        "+OK en English is the language.\r\n"
    );
    assert_eq!(h.send(b"LANG *\r\n"), "+OK en English is the language.\r\n");
    assert_eq!(h.send(b"LANG uga\r\n"), "-ERR Unsupported language.\r\n");
    h.login_alice();
    assert_eq!(
        h.send(b"LANG en-GB\r\n"),
        "+OK en English is the language.\r\n"
    );
    assert!(h.send(b"UTF8\r\n").starts_with("-ERR"));
}

#[test]
fn df_authlist_1_bare_auth_lists_mechanisms() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    assert_eq!(
        h.send(b"AUTH\r\n"),
        "+OK Supported mechanisms follow.\r\nPLAIN\r\nLOGIN\r\n.\r\n"
    );
}

// Also covers: DF-XTND-1, DF-LAST-1, DF-RPOP-1.
#[test]
fn df_xtnd_last_rpop_are_refused() {
    let mut h = logged_in();
    for cmd in ["XTND XLST Message-Id", "LAST", "RPOP alice"] {
        assert_eq!(
            h.send(format!("{cmd}\r\n").as_bytes()),
            "-ERR Unknown command.\r\n"
        );
    }
}

#[test]
fn r5034_auth_3_unsupported_mechanism() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    assert_eq!(
        h.send(b"AUTH FOOBAR\r\n"),
        "-ERR Unsupported authentication mechanism.\r\n"
    );
    // Known to the crate but not configured: also unsupported.
    assert_eq!(
        h.send(b"AUTH CRAM-MD5\r\n"),
        "-ERR Unsupported authentication mechanism.\r\n"
    );
}

#[test]
fn r5034_auth_5_6_empty_challenge_then_cancel_or_answer() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    assert_eq!(h.send(b"AUTH PLAIN\r\n"), "+ \r\n");
    assert_eq!(h.send(b"*\r\n"), "-ERR Authentication cancelled.\r\n");
    assert_eq!(h.conn.state(), SessionState::Authorization);
    assert_eq!(h.send(b"AUTH PLAIN\r\n"), "+ \r\n");
    assert!(
        h.send(b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n")
            .starts_with("+OK Logged in")
    );
}

#[test]
fn r5034_auth_9_initial_response_refused_for_server_first_mechanisms() {
    let mut config = plaintext_config();
    config.sasl_mechanisms = vec![Mechanism::CramMd5];
    let mut h = Harness::new(config);
    h.take_output();
    assert_eq!(
        h.send(b"AUTH CRAM-MD5 dGVzdA==\r\n"),
        "-ERR This mechanism takes no initial response.\r\n"
    );
}

#[test]
fn r5034_auth_10_12_bad_base64_is_refused() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    for ir in ["=AAA", "AAA=BBB", "!!!!"] {
        assert_eq!(
            h.send(format!("AUTH PLAIN {ir}\r\n").as_bytes()),
            "-ERR Invalid base64 data.\r\n"
        );
    }
    assert_eq!(
        h.send(b"AUTH PLAIN AHRp bQ==\r\n"),
        "-ERR Too many arguments.\r\n"
    );
    assert_eq!(h.send(b"AUTH PLAIN\r\n"), "+ \r\n");
    assert_eq!(h.send(b"!!!!\r\n"), "-ERR Invalid base64 data.\r\n");
    assert_eq!(h.conn.state(), SessionState::Authorization);
}

// Also covers: R5034-AUTH-13, XOA2-4, R2449-LEN-2.
#[test]
fn r5034_auth_13_xoa2_4_long_sasl_lines_within_the_explicit_bound() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    let long_ir = "QUFB".repeat(500); // 2000 octets
    assert_eq!(
        h.send(format!("AUTH PLAIN {long_ir}\r\n").as_bytes()),
        "-ERR [AUTH] Authentication failed.\r\n"
    );
    assert_eq!(h.send(b"AUTH PLAIN\r\n"), "+ \r\n");
    let long_line = "QUFB".repeat(3000); // 12 000 octets
    assert_eq!(
        h.send(format!("{long_line}\r\n").as_bytes()),
        "-ERR [AUTH] Authentication failed.\r\n"
    );
    // Beyond the bound: refused, no crash, the session goes on.
    assert_eq!(h.send(b"AUTH PLAIN\r\n"), "+ \r\n");
    let too_long = "QUFB".repeat(5000);
    assert_eq!(
        h.send(format!("{too_long}\r\n").as_bytes()),
        "-ERR Authentication line too long.\r\n"
    );
    h.login_alice();
}

#[test]
fn r5034_auth_8_equals_is_an_empty_initial_response() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    assert_eq!(
        h.send(b"AUTH PLAIN =\r\n"),
        "-ERR [AUTH] Authentication failed.\r\n"
    );
}

#[test]
fn r5034_syn_1_keyword_and_mechanism_case_insensitive_base64_not() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    assert_eq!(
        h.send(b"auth plain ahrpbqb0yw5zdgfhznrhbnn0ywfm\r\n"),
        "-ERR [AUTH] Authentication failed.\r\n"
    );
    assert!(
        h.send(b"auth plain AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n")
            .starts_with("+OK Logged in")
    );
}

#[test]
fn rlogin_1_6_login_challenges_and_initial_user() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    assert_eq!(h.send(b"AUTH LOGIN\r\n"), "+ VXNlcm5hbWU6\r\n");
    assert_eq!(h.send(b"dGlt\r\n"), "+ UGFzc3dvcmQ6\r\n");
    assert!(
        h.send(b"dGFuc3RhYWZ0YW5zdGFhZg==\r\n")
            .starts_with("+OK Logged in")
    );
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    assert_eq!(h.send(b"AUTH LOGIN dGlt\r\n"), "+ UGFzc3dvcmQ6\r\n");
    assert_eq!(h.send(b"*\r\n"), "-ERR Authentication cancelled.\r\n");
    assert_eq!(h.seen.auth_aborted, 1);
}

#[test]
fn max_auth_failures_closes_the_connection() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    h.send(b"USER a\r\nPASS b\r\nUSER a\r\nPASS b\r\n");
    assert!(!h.conn.is_closed());
    let out = h.send(b"USER a\r\nPASS b\r\nNOOP\r\n");
    assert!(
        out.ends_with("-ERR [AUTH] Authentication failed.\r\n"),
        "{out}"
    );
    assert_eq!(h.seen.closed, Some(CloseReason::TooManyAuthFailures));
}

#[test]
fn misuse_is_a_typed_error_not_a_panic() {
    use pop3_proto::server::MisuseError;
    let mut h = Harness::new(plaintext_config());
    assert_eq!(h.conn.body_end(), Err(MisuseError::NotPending));
    assert_eq!(
        h.conn.commit_done(CommitOutcome::Committed),
        Err(MisuseError::NotPending)
    );
    assert_eq!(h.conn.tls_established(), Err(MisuseError::NotPending));
    assert_eq!(
        h.conn.accept_login(pop3_proto::Listing::new()),
        Err(MisuseError::NotPending)
    );
    h.send(b"QUIT\r\n");
    assert_eq!(h.conn.auth_challenge(b""), Err(MisuseError::Closed));
    assert!(
        pop3_proto::ServerConnection::new(
            std::sync::Arc::new(ServerConfig::new()),
            Duration::ZERO,
            Some(b"<a b@c>")
        )
        .is_err()
    );
}

// Also covers: R6856-UTF8-3, R6856-RC-1, R1939-RETR-2.
#[test]
fn message_unavailable_and_abort() {
    use pop3_proto::server::{ServerEvent, Unavailable};
    let mut h = logged_in();
    h.conn.receive(h.now, b"RETR 1\r\nRETR 2\r\n");
    assert!(matches!(
        h.conn.poll_event(),
        Some(ServerEvent::RetrieveMessage {
            index: 0,
            top_lines: None
        })
    ));
    h.conn.message_unavailable(Unavailable::NeedsUtf8).unwrap();
    assert!(matches!(
        h.conn.poll_event(),
        Some(ServerEvent::RetrieveMessage { index: 1, .. })
    ));
    let _ = h.conn.body_chunk(b"Subject: x\r\n").unwrap();
    assert!(h.conn.message_unavailable(Unavailable::Gone).is_err());
    h.conn.body_abort().unwrap();
    assert!(matches!(
        h.conn.poll_event(),
        Some(ServerEvent::Closed(CloseReason::BodyAborted))
    ));
    let mut out = Vec::new();
    let _ = h.conn.poll_transmit(&mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.starts_with(
            "-ERR [UTF8] Message requires UTF8 mode.\r\n+OK 38 octets\r\nSubject: x\r\n"
        )
    );
    assert!(!out.ends_with(".\r\n"), "an aborted body has no terminator");
}

#[test]
fn secrets_do_not_appear_in_debug_output() {
    let mut h = Harness::new(plaintext_config());
    h.conn.receive(h.now, b"USER alice\r\nPASS hunter2\r\n");
    let event = loop {
        match h.conn.poll_event() {
            Some(e @ pop3_proto::ServerEvent::CheckPassword { .. }) => break format!("{e:?}"),
            Some(_) => {}
            None => panic!("no CheckPassword"),
        }
    };
    assert!(!event.contains("hunter2"), "{event}");
}

#[test]
fn r1939_user_1_second_user_replaces_the_first() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    let out = h.send(b"USER bob\r\nUSER alice\r\nPASS secret\r\n");
    assert!(
        out.ends_with("+OK Logged in, 5 messages (3170 octets)\r\n"),
        "{out}"
    );
}

#[test]
fn r2449_rc_ld_1_r3206_sys_2_3_rejections_carry_their_codes() {
    use pop3_proto::server::{LoginRejection, ServerEvent};
    let cases = [
        (LoginRejection::LoginDelay, "-ERR [LOGIN-DELAY] "),
        (LoginRejection::TemporaryFailure, "-ERR [SYS/TEMP] "),
        (LoginRejection::PermanentFailure, "-ERR [SYS/PERM] "),
        (LoginRejection::InUse, "-ERR [IN-USE] "),
        (LoginRejection::BadCredentials, "-ERR [AUTH] "),
    ];
    for (why, prefix) in cases {
        let mut h = Harness::new(plaintext_config());
        h.take_output();
        h.conn.receive(h.now, b"USER alice\r\nPASS secret\r\n");
        while let Some(e) = h.conn.poll_event() {
            assert!(matches!(e, ServerEvent::CheckPassword { .. }));
            h.conn.reject_login(why).unwrap();
        }
        let mut out = Vec::new();
        let _ = h.conn.poll_transmit(&mut out);
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.lines().last().unwrap().starts_with(prefix),
            "{why:?}: {out}"
        );
        // Only credential failures count toward the limit (R3206-CAP-1).
        assert!(!h.conn.is_closed());
    }
}

#[test]
fn r2449_gram_4_capa_8_iana_1_codes_and_tags_are_well_formed_and_registered() {
    let registered = [
        "TOP",
        "USER",
        "SASL",
        "RESP-CODES",
        "LOGIN-DELAY",
        "PIPELINING",
        "EXPIRE",
        "UIDL",
        "IMPLEMENTATION",
        "STLS",
        "AUTH-RESP-CODE",
        "UTF8",
        "LANG",
    ];
    let mut config = ServerConfig::new();
    config.tls = TlsMode::Stls;
    config.login_delay = Some(10);
    config.expire = Some(Expire::Days(30));
    config.implementation = Some("x".into());
    config.implementation_before_login = true;
    let mut h = Harness::new(config);
    h.take_output();
    let capa = h.send(b"CAPA\r\n");
    for line in lines(&capa)[1..].iter().filter(|l| **l != ".\r\n") {
        let tag = line.trim_end().split(' ').next().unwrap();
        assert!(registered.contains(&tag), "unregistered tag {tag}");
    }
    // Every response code we emit fits resp-code = "[" level *("/" level) "]".
    let mut all = capa;
    all += &h.send(b"USER a\r\nPASS b\r\nAUTH PLAIN AGEAYg==\r\n");
    let mut config = plaintext_config();
    config.max_auth_failures = 10;
    let mut h2 = Harness::new(config);
    h2.locked.push("alice");
    all += &h2.send(b"USER alice\r\nPASS secret\r\n");
    let mut codes = 0;
    for line in lines(&all) {
        if let Some(rest) = line.strip_prefix("-ERR [") {
            let code = &rest[..rest.find(']').unwrap()];
            assert!(!code.is_empty());
            for level in code.split('/') {
                assert!(
                    !level.is_empty()
                        && level
                            .bytes()
                            .all(|b| (0x21..=0x7F).contains(&b) && b != b'/' && b != b']'),
                    "{code}"
                );
            }
            codes += 1;
        }
    }
    assert!(codes >= 3, "{all}");
}

#[test]
fn r5034_auth_4_challenges_are_plus_space_base64() {
    let mut h = Harness::new(plaintext_config());
    h.take_output();
    let out = h.send(b"AUTH LOGIN\r\n");
    let line = out.strip_suffix("\r\n").unwrap();
    let b64 = line.strip_prefix("+ ").unwrap();
    assert!(
        !b64.is_empty()
            && b64
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
    );
}
