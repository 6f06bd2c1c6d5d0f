//! `DotUnstuffer` is chunking-invariant: arbitrary wire bytes, split at arbitrary points, give
//! the same concatenated data as one-shot unstuffing, with the terminator (End) reported at
//! the same total offset; both agree with a line-by-line reference model.
//!
//! Input: a count byte and that many `u16` chunk lengths (see `pop3_fuzz::take_lengths`),
//! then the bytes after a `+OK` status line, as a client receives them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pop3_fuzz::{model_unstuff, split_by_lengths, take_lengths, unstuff_chunks};

fuzz_target!(|data: &[u8]| {
    let (cuts, wire) = take_lengths(data);
    let whole = unstuff_chunks(&[wire]);
    let chunked = unstuff_chunks(&split_by_lengths(wire, &cuts));
    assert_eq!(chunked, whole, "chunked {cuts:?} vs one-shot");

    let bytewise: Vec<&[u8]> = wire.chunks(1).collect();
    assert_eq!(
        unstuff_chunks(&bytewise),
        whole,
        "byte at a time vs one-shot"
    );

    assert_eq!(
        whole,
        model_unstuff(wire),
        "one-shot vs the reference model"
    );
});
