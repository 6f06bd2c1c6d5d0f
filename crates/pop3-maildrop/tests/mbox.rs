//! mbox over real files.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime},
};

use common::*;
use pop3_maildrop::{
    MboxFormat, MboxOptions, MboxStore, OpenError, PathTemplate, Store,
    lock::{DotLock, STALE_AFTER},
    mbox::temp_path,
};
use pop3_proto::server::LoginRejection;
use tempfile::TempDir;

const M1: &[u8] = b"From alice@example.org Mon Jan  1 00:00:00 2024\nSubject: one\n\nline\n>From quoted once\n>>From quoted twice\nFrom not after a blank line\n\n";
const M2: &[u8] = b"From bob@example.org Tue Jan  2 00:00:00 2024\nSubject: two\n\n.dot\nno blank line at the end follows\n\n";
const M3: &[u8] = b"From carol@example.org Wed Jan  3 00:00:00 2024\nSubject: three\n\nlast\n";

fn spool(contents: &[u8]) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice");
    fs::write(&path, contents).unwrap();
    (dir, path)
}

fn store(dir: &Path) -> MboxStore {
    MboxStore::new(PathTemplate::under(dir))
}

fn three() -> Vec<u8> {
    [M1, M2, M3].concat()
}

#[test]
fn reads_unquoted_messages_with_wire_sizes() {
    let (dir, _) = spool(&three());
    let mut s = store(dir.path()).open("alice").unwrap();
    assert_eq!(
        all_messages(s.as_mut()),
        [
            &b"Subject: one\n\nline\nFrom quoted once\n>From quoted twice\nFrom not after a blank line\n"[..],
            b"Subject: two\n\n.dot\nno blank line at the end follows\n",
            b"Subject: three\n\nlast\n",
        ]
    );
    let ids = uids(s.as_ref());
    assert!(ids.iter().all(|u| u.len() == 32));
    drop(s);
    // R1939-UIDL-5: stable across sessions.
    assert_eq!(uids(store(dir.path()).open("alice").unwrap().as_ref()), ids);
}

#[test]
fn mboxo_unquotes_one_level_only() {
    let (dir, _) = spool(&three());
    let mut o = MboxOptions::default();
    o.format = MboxFormat::Mboxo;
    let mut s = store(dir.path()).with_options(o).open("alice").unwrap();
    let first = read_message(s.as_mut(), 0);
    assert_eq!(
        first,
        b"Subject: one\n\nline\nFrom quoted once\n>>From quoted twice\nFrom not after a blank line\n"
    );
    all_messages(s.as_mut());
}

#[test]
fn commit_keeps_original_bytes_owner_and_mode() {
    let (dir, path) = spool(&three());
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let st = store(dir.path());
    let s = st.open("alice").unwrap();
    let ids = uids(s.as_ref());
    assert!(DotLock::path_for(&path).exists(), "dotlock held while open");
    s.commit(&[1]).unwrap();
    // Quoting and framing of the kept messages are untouched.
    assert_eq!(fs::read(&path).unwrap(), [M1, M3].concat());
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert!(!DotLock::path_for(&path).exists(), "dotlock released");
    assert!(!temp_path(&path).exists());
    // R1939-UIDL-6: ids follow the messages.
    let s = st.open("alice").unwrap();
    assert_eq!(uids(s.as_ref()), [&*ids[0], &ids[2]]);
    s.commit(&[1]).unwrap();
    assert_eq!(fs::read(&path).unwrap(), M1);
    st.open("alice").unwrap().commit(&[0]).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"", "the spool file stays, empty");
    let s = st.open("alice").unwrap();
    assert!(s.listing().is_empty());
}

#[test]
fn commit_without_deletions_does_not_rewrite() {
    let (dir, path) = spool(&three());
    let ino = fs::metadata(&path).unwrap().ino();
    store(dir.path())
        .open("alice")
        .unwrap()
        .commit(&[])
        .unwrap();
    assert_eq!(fs::metadata(&path).unwrap().ino(), ino);
    let ino2 = {
        store(dir.path())
            .open("alice")
            .unwrap()
            .commit(&[0])
            .unwrap();
        fs::metadata(&path).unwrap().ino()
    };
    assert_ne!(ino2, ino, "a real commit renames a new file in");
}

#[test]
fn bytes_appended_behind_our_back_are_kept() {
    let (dir, path) = spool(&three());
    let s = store(dir.path()).open("alice").unwrap();
    let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut f, b"\nFrom late@example.org\nlate\n").unwrap();
    s.commit(&[0]).unwrap();
    assert_eq!(
        fs::read(&path).unwrap(),
        [M2, M3, b"\nFrom late@example.org\nlate\n"].concat()
    );
}

#[test]
fn in_use_within_the_process() {
    let (dir, path) = spool(&three());
    let st = store(dir.path());
    let s = st.open("alice").unwrap();
    assert!(matches!(st.open("alice"), Err(OpenError::InUse)));
    assert!(matches!(st.open_path(&path), Err(OpenError::InUse)));
    drop(s);
    drop(st.open("alice").unwrap());
}

#[test]
fn dotlock_of_a_live_process_is_respected_and_a_dead_ones_broken() {
    let (dir, path) = spool(&three());
    let st = store(dir.path());
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let lock = DotLock::path_for(&path);
    fs::write(&lock, format!("{}\n", child.id())).unwrap();
    let err = st.open("alice").unwrap_err();
    assert!(matches!(err, OpenError::InUse), "{err}");
    assert_eq!(err.login_rejection(), LoginRejection::InUse);
    // Even an old lock: its owner is alive.
    fs::File::options()
        .write(true)
        .open(&lock)
        .unwrap()
        .set_modified(SystemTime::now() - STALE_AFTER * 2)
        .unwrap();
    assert!(matches!(st.open("alice"), Err(OpenError::InUse)));
    child.kill().unwrap();
    child.wait().unwrap();
    // Dead owner: the lock is stale and broken.
    let s = st.open("alice").unwrap();
    let mine = fs::read_to_string(&lock).unwrap();
    assert!(
        mine.starts_with(&format!("{}:", std::process::id())),
        "{mine}"
    );
    drop(s);
    assert!(!lock.exists());
}

#[test]
fn dotlock_without_pid_is_broken_by_age() {
    let (dir, path) = spool(&three());
    let st = store(dir.path());
    let lock = DotLock::path_for(&path);
    fs::write(&lock, b"").unwrap();
    assert!(matches!(st.open("alice"), Err(OpenError::InUse)));
    fs::File::options()
        .write(true)
        .open(&lock)
        .unwrap()
        .set_modified(SystemTime::now() - STALE_AFTER - Duration::from_secs(1))
        .unwrap();
    drop(st.open("alice").unwrap());
    // A lock of another host is judged by age too.
    fs::write(&lock, b"1:some-other-host\n").unwrap();
    assert!(matches!(st.open("alice"), Err(OpenError::InUse)));
}

#[test]
fn dotlock_can_be_turned_off() {
    let (dir, path) = spool(&three());
    let mut o = MboxOptions::default();
    o.dotlock = false;
    let s = store(dir.path()).with_options(o).open("alice").unwrap();
    assert!(!DotLock::path_for(&path).exists());
    s.commit(&[0]).unwrap();
    assert_eq!(fs::read(&path).unwrap(), [M2, M3].concat());
}

#[test]
fn corrupt_mbox_is_a_typed_error_and_leaves_no_lock() {
    let (dir, path) = spool(b"Subject: not an mbox\n\nFrom x\n");
    let st = store(dir.path());
    let err = st.open("alice").unwrap_err();
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");
    assert_eq!(err.login_rejection(), LoginRejection::PermanentFailure);
    assert!(err.to_string().contains("From"), "{err}");
    // R1939-ST-5: the locks taken before parsing are released.
    assert!(!DotLock::path_for(&path).exists());
    fs::write(&path, three()).unwrap();
    assert_eq!(st.open("alice").unwrap().listing().len(), 3);
}

#[test]
fn leftover_temp_file_is_removed_and_never_mail() {
    let (dir, path) = spool(&three());
    let temp = temp_path(&path);
    assert_eq!(temp.file_name().unwrap(), ".alice.pop3-tmp");
    fs::write(&temp, M1).unwrap();
    let st = store(dir.path());
    // No user name reaches the temp file.
    assert!(matches!(
        st.open(".alice.pop3-tmp"),
        Err(OpenError::InvalidUser)
    ));
    let s = st.open("alice").unwrap();
    assert!(!temp.exists());
    assert_eq!(s.listing().len(), 3);
}

#[test]
fn missing_and_empty() {
    let (dir, path) = spool(b"");
    let st = store(dir.path());
    assert!(matches!(st.open("bob"), Err(OpenError::NotFound)));
    let s = st.open("alice").unwrap();
    assert!(s.listing().is_empty());
    s.commit(&[]).unwrap();
    assert!(matches!(
        st.open("alice").unwrap().commit(&[0]),
        Err(pop3_maildrop::CommitError::NoSuchMessage { index: 0 })
    ));
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    assert!(matches!(st.open("alice"), Err(OpenError::Corrupt { .. })));
}

#[test]
fn identical_copies_get_distinct_ids() {
    let (dir, _) = spool(&[M1, M1, M2].concat());
    let st = store(dir.path());
    let s = st.open("alice").unwrap();
    let ids = uids(s.as_ref());
    assert_eq!(ids[1], format!("{}-2", ids[0]));
    s.commit(&[0]).unwrap();
    let s = st.open("alice").unwrap();
    assert_eq!(uids(s.as_ref()), [&*ids[0], &ids[2]]);
}

#[test]
fn large_message_streams_with_quoting_across_buffers() {
    let mut body = Vec::new();
    let mut expected = Vec::new();
    for i in 0..200_000 {
        if i % 7 == 0 {
            body.extend_from_slice(format!(">>From line {i}\n").as_bytes());
            expected.extend_from_slice(format!(">From line {i}\n").as_bytes());
        } else {
            body.extend_from_slice(format!("line {i}\n").as_bytes());
            expected.extend_from_slice(format!("line {i}\n").as_bytes());
        }
    }
    let mbox = [&b"From big\n"[..], &body, b"\n", M3].concat();
    let (dir, _) = spool(&mbox);
    let mut s = store(dir.path()).open("alice").unwrap();
    let got = all_messages(s.as_mut());
    assert_eq!(got.len(), 2);
    assert!(got[0] == expected, "large message differs");
}
