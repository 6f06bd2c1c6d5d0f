//! Opening a 100,000-message Maildir: the time until the listing is ready.
//!
//! - `cold`: no size cache (`pop3-sizes` removed before each open): every file is opened
//!   and read once to compute its wire size, then the cache is written.
//! - `warm`: the size cache is present and valid: one `stat` per file, no file read.
//! - `dovecot_w`: names carry Dovecot's `,W=<size>`: neither a read nor a `stat`.
//!
//! "Cold" is about our cache only: the files are in the page cache in all three cases.
//! The Maildirs are built once per run in a temp directory (a few seconds).
//!
//! `cargo bench -p pop3-maildrop --bench open`
#![allow(missing_docs, clippy::unwrap_used)]

use std::{
    fs,
    hint::black_box,
    path::{Path, PathBuf},
    time::Duration,
};

use criterion::{Criterion, criterion_group, criterion_main};
use pop3_maildrop::{MaildirStore, Maildrop, PathTemplate, maildir::SIZE_CACHE_FILE};

const MESSAGES: usize = 100_000;

fn message(i: usize) -> Vec<u8> {
    format!(
        "Return-Path: <sender{i}@example.org>\nDelivered-To: alice@example.org\nFrom: Sender {i} <sender{i}@example.org>\nTo: alice@example.org\nSubject: benchmark message {i}\nMessage-ID: <{i}.bench@example.org>\n\nHello,\nthis is message {i}.\n.\n"
    )
    .into_bytes()
}

/// Builds a Maildir of `MESSAGES` messages in `cur/`; with `w`, names carry `,W=`.
fn build(root: &Path, name: &str, w: bool) -> PathBuf {
    let md = root.join(name);
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(md.join(sub)).unwrap();
    }
    for i in 0..MESSAGES {
        let m = message(i);
        let base = format!(
            "{}.M{}P{}.bench.example.org",
            1_600_000_000 + i / 10,
            i % 10 * 1000,
            i
        );
        let file = if w {
            let wire = pop3_proto::dot::wire_size(&m);
            format!("{base},S={},W={wire}:2,", m.len())
        } else {
            format!("{base}:2,")
        };
        fs::write(md.join("cur").join(file), &m).unwrap();
    }
    md
}

fn open_100k(c: &mut Criterion) {
    let root = tempfile::tempdir().unwrap();
    let plain = build(root.path(), "plain", false);
    let dovecot = build(root.path(), "dovecot", true);
    let store = MaildirStore::new(PathTemplate::new("unused"));

    // Sanity: every message listed, the cache makes no difference to the listing.
    let cold = store.open_path(&plain).unwrap();
    assert_eq!(cold.listing().len(), MESSAGES);
    let listing = cold.listing().clone();
    drop(cold);
    assert_eq!(store.open_path(&plain).unwrap().listing(), &listing);
    assert_eq!(
        store.open_path(&dovecot).unwrap().listing().total_size(),
        listing.total_size()
    );

    let mut group = c.benchmark_group("maildir_open_100k");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(8));
    let cache = plain.join(SIZE_CACHE_FILE);
    group.bench_function("cold", |b| {
        b.iter(|| {
            fs::remove_file(&cache).unwrap();
            let m = store.open_path(&plain).unwrap();
            black_box(m.listing().len())
        });
    });
    group.bench_function("warm", |b| {
        b.iter(|| {
            let m = store.open_path(&plain).unwrap();
            black_box(m.listing().len())
        });
    });
    group.bench_function("dovecot_w", |b| {
        b.iter(|| {
            let m = store.open_path(&dovecot).unwrap();
            black_box(m.listing().len())
        });
    });
    group.finish();
}

criterion_group!(benches, open_100k);
criterion_main!(benches);
