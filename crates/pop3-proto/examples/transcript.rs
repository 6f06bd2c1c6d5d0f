//! Drives a scripted POP3 session through the sans-IO server machine and prints the
//! transcript (`C:` client, `S:` server), the way RFC 1939 §10 shows sessions.
//!
//! Run: `cargo run -p pop3-proto --example transcript`
//!
//! No socket is involved: the "client" is a list of lines, the "application" is the match
//! below, with a two-message maildrop in memory.

use std::{sync::Arc, time::Duration};

use pop3_proto::{
    Listing, ServerConfig, ServerConnection, ServerEvent, apop,
    dot::{Progress, wire_size},
    server::{CommitOutcome, LoginRejection},
};

const TIMESTAMP: &[u8] = b"<1896.697170952@dbc.mtview.ca.us>";
const SECRET: &[u8] = b"tanstaaf";

fn main() {
    let messages: [&[u8]; 2] = [
        b"From: alice@example.com\nSubject: hello\n\nHi Bob.\n.signature starts with a dot\n",
        b"Subject: second\r\n\r\nShort.\r\n",
    ];
    let mut config = ServerConfig::new();
    config.allow_plaintext_without_tls = true; // a demo on no network at all
    config.implementation = Some("pop3-proto transcript example".into());
    let mut server = ServerConnection::new(Arc::new(config), Duration::ZERO, Some(TIMESTAMP))
        .expect("valid timestamp");

    let digest = apop::digest(TIMESTAMP, SECRET);
    let apop_line = format!("APOP mrose {}", String::from_utf8_lossy(&digest));
    let script = [
        "CAPA",
        "USER mrose",
        "PASS wrong",
        apop_line.as_str(),
        "STAT",
        "LIST",
        "UIDL",
        "TOP 1 0",
        "RETR 1",
        "DELE 1",
        "STAT",
        "QUIT",
    ];

    let mut wire = Vec::new();
    drive(&mut server, &messages, &mut wire);
    print_server(&wire);
    for line in script {
        println!("C: {line}");
        server.receive(Duration::from_secs(1), format!("{line}\r\n").as_bytes());
        wire.clear();
        drive(&mut server, &messages, &mut wire);
        print_server(&wire);
    }
    assert!(server.is_closed());
}

/// Answers every event as a tiny application would and collects the server's output.
fn drive(server: &mut ServerConnection, messages: &[&[u8]], wire: &mut Vec<u8>) {
    loop {
        let mut progressed = false;
        while let Some(event) = server.poll_event() {
            progressed = true;
            match event {
                ServerEvent::CheckPassword { .. } => {
                    server
                        .reject_login(LoginRejection::BadCredentials)
                        .expect("pending");
                }
                ServerEvent::CheckApop {
                    user,
                    timestamp,
                    digest,
                } => {
                    if user == "mrose" && apop::verify(timestamp, SECRET, digest) {
                        let mut listing = Listing::new();
                        for (i, m) in messages.iter().enumerate() {
                            listing
                                .push(wire_size(m), format!("msg-{i:04}").as_bytes())
                                .expect("valid uid");
                        }
                        server.accept_login(listing).expect("pending");
                    } else {
                        server
                            .reject_login(LoginRejection::BadCredentials)
                            .expect("pending");
                    }
                }
                ServerEvent::RetrieveMessage { index, .. } => {
                    // Streamed in small pieces to show that chunking does not matter.
                    for piece in messages[index].chunks(16) {
                        if server.body_chunk(piece).expect("pending") == Progress::Done {
                            break;
                        }
                    }
                    server.body_end().expect("pending");
                }
                ServerEvent::Commit { deleted } => {
                    println!(
                        "   (application removes messages {:?})",
                        deleted.collect::<Vec<_>>()
                    );
                    server
                        .commit_done(CommitOutcome::Committed)
                        .expect("pending");
                }
                ServerEvent::Closed(reason) => println!("   (session closed: {reason})"),
                other => panic!("not used in this script: {other:?}"),
            }
        }
        progressed |= server.poll_transmit(wire) > 0;
        if !progressed {
            break;
        }
    }
}

fn print_server(wire: &[u8]) {
    for line in String::from_utf8_lossy(wire).split_inclusive("\r\n") {
        println!("S: {}", line.trim_end_matches("\r\n"));
    }
}
