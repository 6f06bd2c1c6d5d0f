//! The stores behind the real server machine of `pop3-proto`: LIST sizes equal the octets
//! RETR sends, DELE + QUIT commits, a second login gets `[IN-USE]`.
#![allow(clippy::unwrap_used)]

mod common;

use std::{io::Read, sync::Arc, time::Duration};

use common::*;
use pop3_maildrop::{
    CommitError, MaildirStore, Maildrop, MboxStore, MemoryStore, PathTemplate, Store,
};
use pop3_proto::{ServerConnection, ServerEvent, dot::Progress, server::ServerConfig};

/// Runs `script` (pipelined) through a server session backed by `store`; returns the wire
/// output and the session's maildrop if it is still open (no QUIT).
fn session(store: &dyn Store, script: &[u8]) -> (String, Option<Box<dyn Maildrop>>) {
    session_with(store, script, || {})
}

/// [`session`], calling `after_login` once the maildrop is open.
fn session_with(
    store: &dyn Store,
    script: &[u8],
    mut after_login: impl FnMut(),
) -> (String, Option<Box<dyn Maildrop>>) {
    let mut config = ServerConfig::new();
    config.allow_plaintext_without_tls = true;
    let mut conn = ServerConnection::new(Arc::new(config), Duration::ZERO, None).unwrap();
    let mut wire = Vec::new();
    let mut maildrop: Option<Box<dyn Maildrop>> = None;
    conn.receive(Duration::ZERO, script);
    loop {
        let mut progressed = false;
        loop {
            enum Todo {
                Login(String),
                Retrieve(usize),
                Commit(Vec<usize>),
                Nothing,
            }
            let todo = match conn.poll_event() {
                None => break,
                Some(ServerEvent::CheckPassword { user, .. }) => Todo::Login(user.to_owned()),
                Some(ServerEvent::RetrieveMessage { index, .. }) => Todo::Retrieve(index),
                Some(ServerEvent::Commit { deleted }) => Todo::Commit(deleted.collect()),
                Some(_) => Todo::Nothing,
            };
            progressed = true;
            match todo {
                Todo::Login(user) => match store.open(&user) {
                    Ok(m) => {
                        conn.accept_login(m.listing().clone()).unwrap();
                        maildrop = Some(m);
                        after_login();
                    }
                    Err(e) => conn.reject_login(e.login_rejection()).unwrap(),
                },
                Todo::Retrieve(index) => {
                    let m = maildrop.as_mut().unwrap();
                    match m.open_message(index) {
                        Ok(mut reader) => {
                            let mut buf = [0u8; 1000];
                            loop {
                                let n = reader.read(&mut buf).unwrap();
                                if n == 0 || conn.body_chunk(&buf[..n]).unwrap() == Progress::Done {
                                    break;
                                }
                            }
                            conn.body_end().unwrap();
                        }
                        Err(e) => conn.message_unavailable(e.unavailable()).unwrap(),
                    }
                }
                Todo::Commit(deleted) => {
                    let result = maildrop.take().unwrap().commit(&deleted);
                    conn.commit_done(CommitError::outcome_of(&result)).unwrap();
                }
                Todo::Nothing => {}
            }
        }
        progressed |= conn.poll_transmit(&mut wire) > 0;
        if !progressed {
            break;
        }
    }
    (String::from_utf8(wire).unwrap(), maildrop)
}

/// Sizes from LIST and body lengths (unstuffed, terminator excluded) of each RETR.
fn list_and_retr(wire: &str, count: usize) -> (Vec<u64>, Vec<u64>) {
    let list_start = wire
        .find("+OK 3 messages")
        .unwrap_or_else(|| wire.find(" messages").expect("LIST answer"));
    let list = &wire[list_start..];
    let list_body = &list[list.find("\r\n").unwrap() + 2..list.find("\r\n.\r\n").unwrap()];
    let sizes = list_body
        .split("\r\n")
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect::<Vec<u64>>();
    assert_eq!(sizes.len(), count);
    let mut bodies = Vec::new();
    let mut rest = &list[list.find("\r\n.\r\n").unwrap() + 5..];
    for _ in 0..count {
        let start = rest.find(" octets\r\n").expect("RETR answer") + 9;
        let end = start + rest[start..].find("\r\n.\r\n").unwrap() + 2;
        let body = &rest[start..end];
        let unstuffed: u64 = body
            .split_inclusive("\r\n")
            .map(|l| l.strip_prefix('.').unwrap_or(l).len() as u64)
            .sum();
        bodies.push(unstuffed);
        rest = &rest[end + 3..];
    }
    (sizes, bodies)
}

fn end_to_end(store: &dyn Store) {
    let script =
        b"USER alice\r\nPASS x\r\nLIST\r\nRETR 1\r\nRETR 2\r\nRETR 3\r\nDELE 2\r\nQUIT\r\n";
    let (wire, left) = session(store, script);
    assert!(left.is_none());
    assert!(wire.contains("+OK Logged in"), "{wire}");
    let (sizes, bodies) = list_and_retr(&wire, 3);
    assert_eq!(sizes, bodies, "LIST size == RETR octets\n{wire}");
    assert!(wire.ends_with("\r\n+OK Logging out.\r\n"), "{wire}");
    assert!(!wire.contains("-ERR"), "{wire}");

    // The deletion is committed; a held session makes the next login [IN-USE].
    let (wire, held) = session(store, b"USER alice\r\nPASS x\r\nSTAT\r\n");
    assert!(wire.contains("+OK 2 "), "{wire}");
    let held = held.unwrap();
    let (wire, _) = session(store, b"USER alice\r\nPASS x\r\n");
    assert!(wire.contains("-ERR [IN-USE]"), "{wire}");
    drop(held);
    let (wire, _) = session(store, b"USER alice\r\nPASS x\r\nSTAT\r\n");
    assert!(wire.contains("+OK 2 "), "{wire}");
}

/// Messages with every oddity the size has to account for.
fn odd(n: usize) -> Vec<u8> {
    match n {
        0 => b"Subject: lf\n\n.leading dot\n..two\n.\n".to_vec(),
        1 => b"Subject: bare cr\r\rx\r\n\r\nbody\rmore\r".to_vec(),
        _ => b"Subject: no final newline\n\nFrom here\nend".to_vec(),
    }
}

#[test]
fn memory_behind_the_server() {
    let store = MemoryStore::new();
    for i in 0..3 {
        store.deliver("alice", &odd(i));
    }
    end_to_end(&store);
}

#[test]
fn maildir_behind_the_server() {
    let (root, md) = maildir();
    for i in 0..3 {
        put(&md, "new", &format!("170000000{i}.M1P1.h"), &odd(i));
    }
    end_to_end(&MaildirStore::new(PathTemplate::under(root.path())));
}

#[test]
fn mbox_behind_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    for i in 0..3 {
        text.extend_from_slice(b"From x Mon Jan  1 00:00:00 2024\n");
        let m = odd(i);
        // mboxrd quoting, and the newline a writer adds before the separator.
        let quoted = String::from_utf8(m).unwrap().replace("\nFrom ", "\n>From ");
        text.extend_from_slice(quoted.as_bytes());
        if !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        text.push(b'\n');
    }
    std::fs::write(dir.path().join("alice"), text).unwrap();
    end_to_end(&MboxStore::new(PathTemplate::under(dir.path())));
}

#[test]
fn vanished_maildir_message_is_sys_temp_and_others_are_served() {
    let (root, md) = maildir();
    for i in 0..3 {
        put(&md, "cur", &format!("170000000{i}.M1P1.h:2,"), &message(i));
    }
    let store = MaildirStore::new(PathTemplate::under(root.path()));
    let victim = md.join("cur/1700000001.M1P1.h:2,");
    let (wire, _) = session_with(
        &store,
        b"USER alice\r\nPASS x\r\nRETR 2\r\nRETR 3\r\nDELE 2\r\nQUIT\r\n",
        || std::fs::remove_file(&victim).unwrap(),
    );
    assert!(
        wire.contains("\r\n-ERR [SYS/TEMP] Message is no longer available.\r\n+OK "),
        "{wire}"
    );
    assert!(wire.contains("Body of message 2."), "{wire}");
    // Deleting the vanished message commits fine.
    assert!(wire.ends_with("\r\n+OK Logging out.\r\n"), "{wire}");
    assert_eq!(
        names(&md, "cur"),
        ["1700000000.M1P1.h:2,", "1700000002.M1P1.h:2,"]
    );
}
