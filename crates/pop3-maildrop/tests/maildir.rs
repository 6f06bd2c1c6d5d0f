//! Maildir over real directories.
#![allow(clippy::unwrap_used)]

mod common;

use std::{fs, os::unix::fs::symlink};

use common::*;
use pop3_maildrop::{
    CommitError, MaildirOptions, MaildirStore, MessageError, OpenError, PathTemplate, Store,
    maildir::{LOCK_FILE, SIZE_CACHE_FILE},
};
use pop3_proto::{
    dot::wire_size,
    server::{LoginRejection, Unavailable},
};

fn store(root: &std::path::Path) -> MaildirStore {
    MaildirStore::new(PathTemplate::under(root))
}

fn no_cache() -> MaildirOptions {
    let mut o = MaildirOptions::default();
    o.size_cache = false;
    o
}

#[test]
fn new_moves_to_cur_and_ids_are_base_names() {
    let (root, md) = maildir();
    put(&md, "new", "1700000002.M1P1.host", &message(2));
    put(&md, "new", "1700000001.M1P1.host", &message(1));
    put(&md, "cur", "1700000000.M1P1.host:2,S", &message(0));
    put(&md, "tmp", "1700000003.M1P1.host", b"not mail yet");
    put(&md, "new", ".hidden", b"not mail");
    put(&md, "cur", ".also-hidden:2,", b"not mail");
    let s = store(root.path());
    let mut session = s.open("alice").unwrap();
    assert_eq!(
        uids(session.as_ref()),
        [
            "1700000000.M1P1.host",
            "1700000001.M1P1.host",
            "1700000002.M1P1.host"
        ]
    );
    assert_eq!(
        all_messages(session.as_mut()),
        [message(0), message(1), message(2)]
    );
    assert_eq!(names(&md, "new"), [".hidden"]);
    assert_eq!(
        names(&md, "cur"),
        [
            ".also-hidden:2,",
            "1700000000.M1P1.host:2,S",
            "1700000001.M1P1.host:2,",
            "1700000002.M1P1.host:2,"
        ]
    );
    assert_eq!(names(&md, "tmp"), ["1700000003.M1P1.host"]);
    drop(session);
    // R1939-UIDL-5: the same ids after the move, in a new session.
    let again = s.open("alice").unwrap();
    assert_eq!(uids(again.as_ref())[2], "1700000002.M1P1.host");
    // Our own files are in the root and never listed.
    assert!(md.join(LOCK_FILE).exists());
    assert_eq!(again.listing().len(), 3);
}

#[test]
fn sizes_are_wire_sizes_of_odd_messages() {
    let (root, md) = maildir();
    let odd: [&[u8]; 6] = [
        b"a\nb\n",
        b"a\r\nb\r\n",
        b"bare\rcr\r",
        b"no final newline",
        b"",
        b"nul \0 and 8-bit \xe9\n.dot\n",
    ];
    for (i, m) in odd.iter().enumerate() {
        put(&md, "cur", &format!("17000000{i:02}.x.h:2,"), m);
    }
    let mut session = store(root.path()).open("alice").unwrap();
    let got = all_messages(session.as_mut());
    assert_eq!(got.len(), odd.len());
    for (i, m) in odd.iter().enumerate() {
        assert_eq!(got[i], *m);
        assert_eq!(session.listing().size(i), Some(wire_size(m)));
    }
    assert_eq!(
        session.listing().size(2),
        Some(10),
        "bare CR counts as CRLF (ROB-11)"
    );
    assert_eq!(
        session.listing().size(3),
        Some(18),
        "missing final newline adds CRLF"
    );
}

#[test]
fn dovecot_w_size_is_used_without_reading_unless_disabled() {
    let (root, md) = maildir();
    // W= deliberately wrong: proves the file is not read when W= is trusted.
    put(&md, "cur", "1700000000.M1P2.h,S=4,W=999:2,", b"a\nb\n");
    put(&md, "cur", "1700000001.M1P2.h,S=4:2,", b"a\nb\n");
    let trusted = store(root.path()).open("alice").unwrap();
    assert_eq!(trusted.listing().size(0), Some(999));
    assert_eq!(trusted.listing().size(1), Some(6));
    assert_eq!(
        uids(trusted.as_ref()),
        ["1700000000.M1P2.h,S=4,W=999", "1700000001.M1P2.h,S=4"]
    );
    drop(trusted);
    let mut o = MaildirOptions::default();
    o.trust_w_size = false;
    let computed = store(root.path()).with_options(o).open("alice").unwrap();
    assert_eq!(computed.listing().size(0), Some(6));
}

#[test]
fn size_cache_is_written_read_and_invalidated() {
    let (root, md) = maildir();
    put(&md, "cur", "1700000000.a.h:2,", b"hello\n");
    put(&md, "cur", "1700000001.b.h:2,", b"world!!\n");
    let s = store(root.path());
    drop(s.open("alice").unwrap());
    let cache_path = md.join(SIZE_CACHE_FILE);
    let cache = fs::read_to_string(&cache_path).unwrap();
    assert!(
        cache.starts_with("pop3-maildrop size cache v1\n"),
        "{cache}"
    );
    assert!(cache.ends_with("end 2\n"), "{cache}");
    assert!(cache.contains(" 1700000000.a.h\n"), "{cache}");

    // The next open believes the cache while the inode matches: plant a wrong size to
    // prove it is read rather than recomputed.
    let planted = cache.replacen("\n7 ", "\n70 ", 1);
    assert_ne!(planted, cache);
    fs::write(&cache_path, &planted).unwrap();
    assert_eq!(s.open("alice").unwrap().listing().size(0), Some(70));

    // A file replaced under the same name (new inode) is sized again.
    let replacement = md.join("tmp/replacement");
    fs::write(&replacement, b"hello\n").unwrap();
    fs::rename(&replacement, md.join("cur/1700000000.a.h:2,")).unwrap();
    assert_eq!(s.open("alice").unwrap().listing().size(0), Some(7));

    // A deleted message's entry is dropped at the next rewrite.
    fs::remove_file(md.join("cur/1700000001.b.h:2,")).unwrap();
    drop(s.open("alice").unwrap());
    let cache = fs::read_to_string(&cache_path).unwrap();
    assert!(
        cache.ends_with("end 1\n") && !cache.contains("b.h"),
        "{cache}"
    );

    // A damaged cache is ignored, then rewritten.
    fs::write(&cache_path, "garbage").unwrap();
    assert_eq!(s.open("alice").unwrap().listing().size(0), Some(7));
    assert!(
        fs::read_to_string(&cache_path)
            .unwrap()
            .ends_with("end 1\n")
    );

    // Flag changes (another name, same base) keep the cache entry valid.
    fs::rename(
        md.join("cur/1700000000.a.h:2,"),
        md.join("cur/1700000000.a.h:2,S"),
    )
    .unwrap();
    let before = fs::read(&cache_path).unwrap();
    assert_eq!(s.open("alice").unwrap().listing().size(0), Some(7));
    assert_eq!(
        fs::read(&cache_path).unwrap(),
        before,
        "cache not rewritten"
    );

    // Disabled: not read (the planted size is ignored).
    fs::write(
        &cache_path,
        String::from_utf8(before)
            .unwrap()
            .replacen("\n7 ", "\n70 ", 1),
    )
    .unwrap();
    let off = store(root.path())
        .with_options(no_cache())
        .open("alice")
        .unwrap();
    assert_eq!(off.listing().size(0), Some(7));
}

#[test]
fn invalid_base_names_get_stable_derived_ids() {
    let (root, md) = maildir();
    let long = format!("1700000000.{}.host", "x".repeat(80));
    put(&md, "cur", &format!("{long}:2,"), b"long\n");
    put(&md, "cur", "1700000001.with space.host:2,", b"space\n");
    fs::write(
        md.join("cur").join(std::ffi::OsStr::new(latin1_name())),
        b"latin1\n",
    )
    .unwrap();
    let s = store(root.path());
    let first = uids(s.open("alice").unwrap().as_ref());
    assert_eq!(first.len(), 3);
    for uid in &first {
        assert!(pop3_proto::maildrop::is_valid_uid(uid.as_bytes()), "{uid}");
        assert_eq!(uid.len(), 32);
    }
    let mut sorted = first.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 3, "distinct");
    // Same ids in the next session, and after a flag change.
    fs::rename(
        md.join("cur/1700000001.with space.host:2,"),
        md.join("cur/1700000001.with space.host:2,RS"),
    )
    .unwrap();
    assert_eq!(uids(s.open("alice").unwrap().as_ref()), first);
}

/// A file name with a Latin-1 byte (not UTF-8).
fn latin1_name() -> &'static std::ffi::OsStr {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(b"1700000002.caf\xe9.host:2,")
}

#[test]
fn second_open_is_in_use_until_released() {
    let (root, _md) = maildir();
    let s = store(root.path());
    let first = s.open("alice").unwrap();
    let err = s.open("alice").unwrap_err();
    assert!(matches!(err, OpenError::InUse), "{err}");
    assert_eq!(err.login_rejection(), LoginRejection::InUse);
    // The same directory under another path is the same maildrop.
    let other = store(root.path()).open_path(&root.path().join("alice/../alice"));
    assert!(matches!(other, Err(OpenError::InUse)));
    drop(first);
    let second = s.open("alice").unwrap();
    second.commit(&[]).unwrap();
    drop(s.open("alice").unwrap());
}

#[test]
fn commit_removes_exactly_the_marked_messages() {
    let (root, md) = maildir();
    for i in 0..5 {
        put(&md, "new", &format!("170000000{i}.M0P0.h"), &message(i));
    }
    let s = store(root.path());
    let drop1 = s.open("alice").unwrap();
    let before = uids(drop1.as_ref());
    // Unordered, duplicated indices are fine.
    drop1.commit(&[2, 0, 2]).unwrap();
    let mut after = s.open("alice").unwrap();
    // R1939-UPD-1 / UIDL-6: the rest keep their ids; numbers shift.
    assert_eq!(uids(after.as_ref()), [&*before[1], &before[3], &before[4]]);
    assert_eq!(
        all_messages(after.as_mut()),
        [message(1), message(3), message(4)]
    );
    // Out of range: nothing removed, lock released anyway.
    let err = after.commit(&[0, 3]).unwrap_err();
    assert!(
        matches!(err, CommitError::NoSuchMessage { index: 3 }),
        "{err}"
    );
    assert_eq!(s.open("alice").unwrap().listing().len(), 3);
}

#[test]
fn dropping_without_commit_removes_nothing() {
    let (root, md) = maildir();
    put(&md, "cur", "1.a.h:2,", b"x\n");
    let s = store(root.path());
    let d = s.open("alice").unwrap();
    drop(d);
    assert_eq!(s.open("alice").unwrap().listing().len(), 1);
}

#[test]
fn vanished_and_renamed_files_during_a_session() {
    let (root, md) = maildir();
    for i in 0..3 {
        put(&md, "cur", &format!("170000000{i}.a.h:2,"), &message(i));
    }
    let s = store(root.path());
    let mut d = s.open("alice").unwrap();
    // Another program removes message 1 and flags message 2.
    fs::remove_file(md.join("cur/1700000000.a.h:2,")).unwrap();
    fs::rename(
        md.join("cur/1700000001.a.h:2,"),
        md.join("cur/1700000001.a.h:2,S"),
    )
    .unwrap();
    // New mail does not change this session's view (R1939-LOCK-3).
    put(&md, "new", "1700000009.a.h", &message(9));
    put(&md, "cur", "1700000008.a.h:2,", &message(8));
    assert_eq!(d.listing().len(), 3);
    let err = d.open_message(0).map(|_| ()).unwrap_err();
    assert!(matches!(err, MessageError::Gone { index: 0 }), "{err}");
    assert_eq!(err.unavailable(), Unavailable::Gone);
    assert_eq!(read_message(d.as_mut(), 1), message(1));
    assert_eq!(read_message(d.as_mut(), 2), message(2));
    let err = d.open_message(3).map(|_| ()).unwrap_err();
    assert!(matches!(err, MessageError::NoSuchMessage { index: 3 }));
    // Deleting the vanished and the renamed one succeeds.
    d.commit(&[0, 1]).unwrap();
    assert_eq!(
        names(&md, "cur"),
        ["1700000002.a.h:2,", "1700000008.a.h:2,"]
    );
    let next = s.open("alice").unwrap();
    assert_eq!(
        uids(next.as_ref()),
        ["1700000002.a.h", "1700000008.a.h", "1700000009.a.h"]
    );
}

#[test]
fn odd_files_are_skipped_and_the_rest_served() {
    let (root, md) = maildir();
    put(&md, "cur", "1700000000.a.h:2,", &message(0));
    symlink("/etc/hostname", md.join("cur/1700000001.link.h:2,")).unwrap();
    fs::create_dir(md.join("cur/1700000002.dir.h:2,")).unwrap();
    put(&md, "cur", "1700000003.a.h:2,", &message(3));
    // A name already taken in cur/: left in new/.
    put(&md, "new", "1700000003.a.h", b"duplicate delivery\n");
    let s = store(root.path());
    let mut d = s.open_path(&md).unwrap();
    assert_eq!(uids(&d), ["1700000000.a.h", "1700000003.a.h"]);
    assert_eq!(all_messages(&mut d), [message(0), message(3)]);
    let mut skipped: Vec<_> = d
        .skipped()
        .iter()
        .map(|s| s.name.to_string_lossy().into_owned())
        .collect();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            "1700000001.link.h:2,",
            "1700000002.dir.h:2,",
            "1700000003.a.h"
        ]
    );
    assert_eq!(names(&md, "new"), ["1700000003.a.h"]);
}

#[test]
fn a_symlink_swapped_in_after_open_is_not_followed() {
    let (root, md) = maildir();
    put(&md, "cur", "1700000000.a.h:2,", &message(0));
    let mut d = store(root.path()).open("alice").unwrap();
    fs::remove_file(md.join("cur/1700000000.a.h:2,")).unwrap();
    symlink("/etc/hostname", md.join("cur/1700000000.a.h:2,")).unwrap();
    let err = d.open_message(0).map(|_| ()).unwrap_err();
    assert!(matches!(err, MessageError::Io { index: 0, .. }), "{err}");
    assert_eq!(err.unavailable(), Unavailable::StorageError);
}

#[test]
fn open_errors() {
    let (root, md) = maildir();
    let s = store(root.path());
    let err = s.open("bob").unwrap_err();
    assert!(matches!(err, OpenError::NotFound), "{err}");
    assert_eq!(err.login_rejection(), LoginRejection::PermanentFailure);
    for bad in ["", "..", "../alice", "a/b", ".alice"] {
        assert!(
            matches!(s.open(bad), Err(OpenError::InvalidUser)),
            "{bad:?}"
        );
    }
    fs::remove_dir(md.join("new")).unwrap();
    let err = s.open("alice").unwrap_err();
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("not a Maildir"), "{err}");
    fs::write(root.path().join("file"), b"").unwrap();
    assert!(matches!(s.open("file"), Err(OpenError::Corrupt { .. })));
    // A failed open holds nothing: fix it and open.
    fs::create_dir(md.join("new")).unwrap();
    drop(s.open("alice").unwrap());
}

#[test]
fn empty_maildir() {
    let (root, _md) = maildir();
    let d = store(root.path()).open("alice").unwrap();
    assert!(d.listing().is_empty());
    d.commit(&[]).unwrap();
}

#[test]
fn duplicate_base_names_get_distinct_ids() {
    let (root, md) = maildir();
    put(&md, "cur", "1700000000.a.h:2,", b"one\n");
    put(&md, "cur", "1700000000.a.h:2,S", b"one\n");
    let s = store(root.path());
    let ids = uids(s.open("alice").unwrap().as_ref());
    assert_eq!(ids[0], "1700000000.a.h");
    assert_ne!(ids[0], ids[1]);
    assert_eq!(uids(s.open("alice").unwrap().as_ref()), ids);
}
