//! Stored message bytes in arbitrary chunks through `DotStuffer` (RETR), then the wire bytes in
//! other arbitrary chunks through `DotUnstuffer`, give back the CRLF-normalised original (bare
//! CR and bare LF become CRLF, a final CRLF is added if missing), with the terminator exactly
//! at the end of the wire bytes; `wire_size` (one-shot and chunked `WireSize`) equals the
//! normalised length. TOP output is valid wire form too, and its data a prefix of RETR's (plus
//! the blank line TOP adds when the headers never end).
//!
//! Input: one byte whose low 3 bits are the TOP line count, the chunk lengths for the stored
//! message, the chunk lengths for the wire bytes (each a count byte and `u16`s, see
//! `pop3_fuzz::take_lengths`), then the stored message. `\0\0\0` + a message is a seed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pop3_fuzz::{normalise, split_by_lengths, take_lengths, unstuff_chunks};
use pop3_proto::dot::{DotStuffer, WireSize, wire_size};

/// Stuffs `chunks` with `stuffer`, then finishes it.
fn stuff(mut stuffer: DotStuffer, chunks: &[&[u8]]) -> Vec<u8> {
    let mut wire = Vec::new();
    for chunk in chunks {
        let _ = stuffer.stuff(chunk, &mut wire);
    }
    stuffer.finish(&mut wire);
    // Once finished, the stuffer writes nothing more.
    let len = wire.len();
    let _ = stuffer.stuff(b"\r\n.\r\nmore", &mut wire);
    stuffer.finish(&mut wire);
    assert_eq!(wire.len(), len, "a finished stuffer wrote more");
    wire
}

fuzz_target!(|data: &[u8]| {
    let Some((&top_lines, rest)) = data.split_first() else {
        return;
    };
    let (stuff_cuts, rest) = take_lengths(rest);
    let (unstuff_cuts, raw) = take_lengths(rest);
    let expected = normalise(raw);
    let stored = split_by_lengths(raw, &stuff_cuts);

    let wire = stuff(DotStuffer::new(), &stored);
    assert!(
        wire.ends_with(b".\r\n"),
        "RETR wire ends with the terminator"
    );
    let (data, end) = unstuff_chunks(&split_by_lengths(&wire, &unstuff_cuts));
    assert_eq!(end, Some(wire.len()), "terminator found exactly at the end");
    assert_eq!(
        data,
        expected,
        "roundtrip of {:?}",
        raw.escape_ascii().to_string()
    );

    let size = expected.len() as u64;
    assert_eq!(wire_size(raw), size, "wire_size");
    let mut counter = WireSize::new();
    for chunk in &stored {
        counter.feed(chunk);
    }
    assert_eq!(counter.finish(), size, "chunked WireSize");

    let lines = u64::from(top_lines % 8);
    let top = stuff(DotStuffer::top(lines), &stored);
    let (top_data, top_end) = unstuff_chunks(&[&top]);
    assert_eq!(
        top_end,
        Some(top.len()),
        "TOP {lines}: terminator at the end"
    );
    let mut with_blank = expected.clone();
    with_blank.extend_from_slice(b"\r\n");
    assert!(
        expected.starts_with(&top_data) || top_data == with_blank,
        "TOP {lines} of {:?} gave {:?}",
        raw.escape_ascii().to_string(),
        top.escape_ascii().to_string()
    );
});
