//! The `Store`/`Maildrop` contract, run against all three stores, plus the in-memory
//! store's own features.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;

use common::*;
use pop3_maildrop::{
    CommitError, MaildirStore, MboxStore, MemoryStore, OpenError, PathTemplate, Store,
};
use pop3_proto::server::CommitOutcome;
use tempfile::TempDir;

/// A store where "alice" has messages 0, 1, 2 (as `message(n)`), plus what keeps it alive.
type Fixture = (Box<dyn Store>, Option<TempDir>);

fn memory() -> Fixture {
    let s = MemoryStore::new();
    for i in 0..3 {
        s.deliver("alice", &message(i));
    }
    (Box::new(s), None)
}

fn maildir() -> Fixture {
    let (root, md) = common::maildir();
    for i in 0..3 {
        put(&md, "new", &format!("170000000{i}.M1P1.host"), &message(i));
    }
    let s = MaildirStore::new(PathTemplate::under(root.path()));
    (Box::new(s), Some(root))
}

fn mbox() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    for i in 0..3 {
        text.extend_from_slice(
            format!("From sender{i}@example.org Mon Jan  1 00:00:0{i} 2024\n").as_bytes(),
        );
        // mboxrd quoting of the body's `From ` line.
        let m = String::from_utf8(message(i))
            .unwrap()
            .replace("\nFrom ", "\n>From ");
        text.extend_from_slice(m.as_bytes());
        text.push(b'\n');
    }
    fs::write(dir.path().join("alice"), text).unwrap();
    let s = MboxStore::new(PathTemplate::under(dir.path()));
    (Box::new(s), Some(dir))
}

fn contract(fixture: fn() -> Fixture) {
    let (store, _keep) = fixture();
    let store = store.as_ref();

    // Open: three messages, sizes equal to what RETR sends, stored bytes as delivered.
    let mut s = store.open("alice").unwrap();
    assert_eq!(
        all_messages(s.as_mut()),
        [message(0), message(1), message(2)]
    );
    let ids = uids(s.as_ref());
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "R1939-UIDL-4");

    // Exclusive.
    assert!(matches!(store.open("alice"), Err(OpenError::InUse)));
    // Dropped without commit: nothing changes, lock released (R1939-UPD-2, LOCK-2).
    drop(s);
    let s = store.open("alice").unwrap();
    assert_eq!(uids(s.as_ref()), ids, "R1939-UIDL-5");

    // Out-of-range commit: nothing removed.
    assert!(matches!(
        s.commit(&[3]),
        Err(CommitError::NoSuchMessage { index: 3 })
    ));
    let s = store.open("alice").unwrap();
    assert_eq!(s.listing().len(), 3);

    // Commit removes exactly the marked ones; ids follow messages (R1939-UIDL-6).
    let result = s.commit(&[1]);
    assert_eq!(CommitError::outcome_of(&result), CommitOutcome::Committed);
    let mut s = store.open("alice").unwrap();
    assert_eq!(uids(s.as_ref()), [&*ids[0], &ids[2]]);
    assert_eq!(all_messages(s.as_mut()), [message(0), message(2)]);
    s.commit(&[0, 1]).unwrap();
    assert!(store.open("alice").unwrap().listing().is_empty());

    // Unknown and unnameable users.
    assert!(matches!(
        store.open("nobody"),
        Err(OpenError::NotFound | OpenError::InvalidUser)
    ));
}

#[test]
fn contract_memory() {
    contract(memory);
}

#[test]
fn contract_maildir() {
    contract(maildir);
}

#[test]
fn contract_mbox() {
    contract(mbox);
}

#[test]
fn stores_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MemoryStore>();
    assert_send_sync::<MaildirStore>();
    assert_send_sync::<MboxStore>();
    let (store, _keep) = maildir();
    let store: std::sync::Arc<dyn Store> = store.into();
    // Sessions move to other threads (as with spawn_blocking).
    let s = store.open("alice").unwrap();
    let handle = std::thread::spawn(move || s.listing().len());
    assert_eq!(handle.join().unwrap(), 3);
}

#[test]
fn memory_store_delivery_during_session_and_ids() {
    let store = MemoryStore::new();
    let first = store.deliver("alice", b"one\n");
    let s = store.open("alice").unwrap();
    assert!(store.is_locked("alice"));
    let second = store.deliver("alice", b"two\n");
    assert_ne!(first, second);
    assert_eq!(s.listing().len(), 1, "R1939-LOCK-3");
    s.commit(&[0]).unwrap();
    assert!(!store.is_locked("alice"));
    assert_eq!(
        store.messages("alice").unwrap(),
        [(second.clone(), b"two\n".to_vec())]
    );
    // R1939-UIDL-7: a new message never gets a used id.
    let third = store.deliver("alice", b"one\n");
    assert!(third != first && third != second);
    assert!(store.deliver_with_uid("alice", "chosen", b"x\n"));
    assert!(
        !store.deliver_with_uid("alice", "chosen", b"y\n"),
        "duplicate"
    );
    assert!(
        !store.deliver_with_uid("alice", "has space", b"y\n"),
        "invalid"
    );
    assert!(store.messages("nobody").is_none());
    store.add_user("empty");
    assert!(store.open("empty").unwrap().listing().is_empty());
}

#[test]
fn memory_store_injected_commit_failure() {
    let store = MemoryStore::new();
    for i in 0..4 {
        store.deliver("alice", &message(i));
    }
    store.fail_next_commit_after("alice", 1);
    let s = store.open("alice").unwrap();
    let err = s.commit(&[0, 1, 2]).unwrap_err();
    let CommitError::Storage { not_removed, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(not_removed, &[1, 2]);
    assert_eq!(err.outcome(), CommitOutcome::Failed);
    assert!(!store.is_locked("alice"), "released after a failed commit");
    let left: Vec<_> = store
        .messages("alice")
        .unwrap()
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    assert_eq!(left, [message(1), message(2), message(3)]);
    // Only the next commit fails.
    store.open("alice").unwrap().commit(&[0]).unwrap();
    assert_eq!(store.messages("alice").unwrap().len(), 2);
}

#[test]
fn demo_store_sizes_match_retr() {
    let store = MemoryStore::demo("demo");
    let mut s = store.open("demo").unwrap();
    let messages = all_messages(s.as_mut());
    assert_eq!(messages.len(), 3);
    assert!(!messages[2].ends_with(b"\n"));
}
