//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
};

use pop3_maildrop::Maildrop;
use pop3_proto::dot::wire_size;
use tempfile::TempDir;

/// A temp directory holding an empty Maildir `alice/` (with `cur/`, `new/`, `tmp/`).
pub fn maildir() -> (TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let md = root.path().join("alice");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(md.join(sub)).unwrap();
    }
    (root, md)
}

/// Writes `bytes` to `dir/sub/name`.
pub fn put(dir: &Path, sub: &str, name: &str, bytes: &[u8]) {
    fs::write(dir.join(sub).join(name), bytes).unwrap();
}

/// File names in `dir/sub`, sorted.
pub fn names(dir: &Path, sub: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir.join(sub))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// Message `index` read whole through `open_message`, in odd-sized reads.
pub fn read_message(drop: &mut dyn Maildrop, index: usize) -> Vec<u8> {
    read_message_in(drop, index, 7)
}

/// Message `index` read whole through `open_message`, `step` bytes a read.
pub fn read_message_in(drop: &mut dyn Maildrop, index: usize, step: usize) -> Vec<u8> {
    let mut reader = drop.open_message(index).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; step];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Every message's bytes, after checking that its listed size is what RETR will send.
pub fn all_messages(drop: &mut dyn Maildrop) -> Vec<Vec<u8>> {
    all_messages_in(drop, 7)
}

/// [`all_messages`], reading `step` bytes at a time.
pub fn all_messages_in(drop: &mut dyn Maildrop, step: usize) -> Vec<Vec<u8>> {
    (0..drop.listing().len())
        .map(|i| {
            let bytes = read_message_in(drop, i, step);
            assert_eq!(
                drop.listing().size(i),
                Some(wire_size(&bytes)),
                "LIST size of message {} differs from what RETR sends",
                i + 1
            );
            bytes
        })
        .collect()
}

/// The unique ids, as strings.
pub fn uids(drop: &dyn Maildrop) -> Vec<String> {
    let l = drop.listing();
    (0..l.len())
        .map(|i| String::from_utf8(l.uid(i).unwrap().to_vec()).unwrap())
        .collect()
}

/// A message of a few lines, different for each `n`.
pub fn message(n: usize) -> Vec<u8> {
    format!(
        "From: sender{n}@example.org\nSubject: message {n}\nMessage-ID: <{n}@example.org>\n\nBody of message {n}.\n.a line with a dot\nFrom the start of a line\n"
    )
    .into_bytes()
}
