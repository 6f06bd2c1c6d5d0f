//! Codec throughput: dot-stuffing and unstuffing of a 1 MiB message against a plain copy of
//! the same bytes measured in the same group, `wire_size`, and `Command::parse` per op.
//!
//! Design target (docs/performance.md): stuffing and unstuffing within 3x of the copy.
//!
//! ```sh
//! cargo bench -p pop3-benches --bench codec -- --warm-up-time 1 --measurement-time 3
//! benches/ratio.sh   # the same, then prints stuff/copy and unstuff/copy
//! ```

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pop3_benches::{CHUNK, bare_lf, mail};
use pop3_proto::{
    Command, Parsed,
    dot::{DotStuffer, DotUnstuffer, Progress, Unstuffed, wire_size},
};

/// Size of the benchmark message: 1 MiB, or `POP3_BENCH_MIB` MiB (e.g. 32 to see the codecs
/// against a copy that no longer fits in the caches; results land under the same bench ids).
fn message_size() -> usize {
    let mib = std::env::var("POP3_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&m| m > 0)
        .unwrap_or(1);
    mib * 1024 * 1024
}

/// The baseline: what an adapter does with bytes that need no work at all.
fn copy(raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
    for chunk in raw.chunks(CHUNK) {
        out.extend_from_slice(chunk);
    }
}

/// RETR's body: the stored message in chunks through a `DotStuffer`.
fn stuff(raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut stuffer = DotStuffer::new();
    for chunk in raw.chunks(CHUNK) {
        let progress = stuffer.stuff(chunk, out);
        debug_assert_eq!(progress, Progress::More);
    }
    stuffer.finish(out);
}

/// The client's side: the wire bytes in chunks through a `DotUnstuffer`, data collected in
/// `out` (a client keeps the message, so the copy is part of the work). Returns whether the
/// terminator was found.
fn unstuff(wire: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let mut unstuffer = DotUnstuffer::new();
    for chunk in wire.chunks(CHUNK) {
        let mut rest = chunk;
        loop {
            let (used, piece) = unstuffer.next(rest);
            rest = &rest[used..];
            match piece {
                Some(Unstuffed::Data(data)) => out.extend_from_slice(data),
                Some(Unstuffed::End) => return true,
                None => break,
            }
        }
    }
    false
}

/// The unstuffer alone: finds the stuffing and the terminator, copies nothing.
fn unstuff_scan(wire: &[u8]) -> usize {
    let mut unstuffer = DotUnstuffer::new();
    let mut total = 0;
    for chunk in wire.chunks(CHUNK) {
        let mut rest = chunk;
        loop {
            let (used, piece) = unstuffer.next(rest);
            rest = &rest[used..];
            match piece {
                Some(Unstuffed::Data(data)) => total += data.len(),
                Some(Unstuffed::End) => return total,
                None => break,
            }
        }
    }
    total
}

fn dot_stuff(c: &mut Criterion) {
    let size = message_size();
    let crlf = mail(size);
    let lf = bare_lf(&crlf);
    let mut out = Vec::with_capacity(2 * size);

    // Check once, outside the timing, that the work being measured is the right work.
    stuff(&lf, &mut out);
    let from_lf = out.clone();
    stuff(&crlf, &mut out);
    assert_eq!(
        out, from_lf,
        "bare-LF and CRLF storage give the same wire bytes"
    );
    assert!(out.len() > crlf.len() + 3, "some lines were stuffed");

    let mut group = c.benchmark_group("dot_stuff");
    for (name, raw) in [("crlf", &crlf), ("lf", &lf)] {
        group.throughput(Throughput::Bytes(raw.len() as u64));
        group.bench_function(BenchmarkId::new("copy", name), |b| {
            b.iter(|| copy(black_box(raw), &mut out));
        });
        group.bench_function(BenchmarkId::new("stuff", name), |b| {
            b.iter(|| stuff(black_box(raw), &mut out));
        });
    }
    group.finish();
}

fn dot_unstuff(c: &mut Criterion) {
    let size = message_size();
    let crlf = mail(size);
    let mut wire = Vec::with_capacity(2 * size);
    stuff(&crlf, &mut wire);
    let mut out = Vec::with_capacity(2 * size);
    assert!(unstuff(&wire, &mut out), "the terminator is found");
    assert_eq!(out, crlf, "unstuffing gives back the stored CRLF message");
    assert_eq!(unstuff_scan(&wire), crlf.len());

    let mut group = c.benchmark_group("dot_unstuff");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("copy", |b| b.iter(|| copy(black_box(&wire), &mut out)));
    group.bench_function("unstuff", |b| {
        b.iter(|| unstuff(black_box(&wire), &mut out));
    });
    group.bench_function("unstuff_scan", |b| {
        b.iter(|| unstuff_scan(black_box(&wire)));
    });
    group.finish();
}

fn wire_size_bench(c: &mut Criterion) {
    let crlf = mail(message_size());
    let lf = bare_lf(&crlf);
    assert_eq!(wire_size(&crlf), crlf.len() as u64);
    assert_eq!(wire_size(&lf), crlf.len() as u64);

    let mut group = c.benchmark_group("wire_size");
    for (name, raw) in [("crlf", &crlf), ("lf", &lf)] {
        group.throughput(Throughput::Bytes(raw.len() as u64));
        group.bench_function(name, |b| b.iter(|| wire_size(black_box(raw))));
    }
    group.finish();
}

fn command_parse(c: &mut Criterion) {
    const LINES: [&[u8]; 4] = [
        b"RETR 1\r\n",
        b"USER alice\r\n",
        b"TOP 12 100\r\n",
        b"UIDL\r\n",
    ];
    for line in LINES {
        assert!(
            matches!(Command::parse(line), Ok(Parsed::Complete((n, _))) if n == line.len()),
            "{line:?} parses"
        );
    }

    let mut group = c.benchmark_group("command_parse");
    // One element per command: criterion's elem/s, inverted, is ns per parse.
    group.throughput(Throughput::Elements(LINES.len() as u64));
    group.bench_function("mix", |b| {
        b.iter(|| {
            for line in LINES {
                let parsed = Command::parse(black_box(line));
                black_box(&parsed);
            }
        });
    });
    group.throughput(Throughput::Elements(1));
    for line in LINES {
        let name = String::from_utf8_lossy(line.trim_ascii_end()).replace(' ', "_");
        group.bench_function(name, |b| {
            b.iter(|| {
                let parsed = Command::parse(black_box(line));
                black_box(&parsed);
            });
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    dot_stuff,
    dot_unstuff,
    wire_size_bench,
    command_parse
);
criterion_main!(benches);
