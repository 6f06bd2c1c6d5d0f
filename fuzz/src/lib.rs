//! Helpers shared by the fuzz targets: chunk splitting and small reference models.
//!
//! The models are written independently of `pop3-proto` (plain byte loops, no fast paths),
//! so a target that compares the crate with them checks the crate's logic, not a copy of it.

use pop3_proto::dot::{DotUnstuffer, Unstuffed};

/// Reads chunk lengths from the front of a fuzz input: one count byte (taken modulo 16), then
/// that many little-endian `u16` lengths; returns them and the rest of the input. Missing
/// bytes count as 0, so every input is valid, and a plain message with a `\0` in front of it
/// is a seed that feeds the whole message in one chunk.
pub fn take_lengths(data: &[u8]) -> (Vec<u16>, &[u8]) {
    let Some((&count, mut rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let mut lens = Vec::with_capacity(usize::from(count % 16));
    for _ in 0..count % 16 {
        let (le, tail) = rest.split_at(rest.len().min(2));
        let mut bytes = [0u8; 2];
        bytes[..le.len()].copy_from_slice(le);
        lens.push(u16::from_le_bytes(bytes));
        rest = tail;
    }
    (lens, rest)
}

/// Splits `data` into consecutive chunks whose lengths are taken from `lens` in turn (a length
/// of 0 gives an empty chunk, which the codecs must accept too); whatever is left after the
/// last length is the final chunk.
pub fn split_by_lengths<'a>(data: &'a [u8], lens: &[u16]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::with_capacity(lens.len() + 1);
    let mut rest = data;
    for &len in lens {
        let (head, tail) = rest.split_at(usize::from(len).min(rest.len()));
        chunks.push(head);
        rest = tail;
    }
    chunks.push(rest);
    chunks
}

/// What RETR must deliver for stored bytes `raw`, before stuffing: every CRLF, bare LF and
/// bare CR becomes CRLF, and a last line without a line end gets one.
pub fn normalise(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 2);
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if raw.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    // Every CR and LF of `raw` became part of a CRLF, so this is "raw did not end a line".
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// RFC 1939 §3 unstuffing, one line at a time: lines end at LF; a line that is `.` followed
/// by LF or CRLF is the terminator; any other line starting with `.` loses that dot. Returns
/// the data and the offset just past the terminator, if one was found. A trailing `.` or
/// `.\r` that might still become the terminator is not data yet.
pub fn model_unstuff(wire: &[u8]) -> (Vec<u8>, Option<usize>) {
    let mut out = Vec::with_capacity(wire.len());
    let mut start = 0;
    while start < wire.len() {
        let end = wire[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|lf| start + lf + 1);
        let line = &wire[start..end.unwrap_or(wire.len())];
        if line.first() == Some(&b'.') {
            if line == b".\n" || line == b".\r\n" {
                return (out, Some(start + line.len()));
            }
            if end.is_none() && (line == b"." || line == b".\r") {
                return (out, None);
            }
            out.extend_from_slice(&line[1..]);
        } else {
            out.extend_from_slice(line);
        }
        start += line.len();
    }
    (out, None)
}

/// Runs a [`DotUnstuffer`] over `chunks` in order, as a client does with reads from its
/// socket. Returns the data, and the total offset just past the terminator if it was found.
///
/// Panics if the unstuffer stops making progress (a call that neither consumes input nor
/// returns data twice in a row) or keeps consuming after the terminator.
pub fn unstuff_chunks(chunks: &[&[u8]]) -> (Vec<u8>, Option<usize>) {
    let mut unstuffer = DotUnstuffer::new();
    let mut data = Vec::new();
    let mut offset = 0;
    for chunk in chunks {
        let mut rest = *chunk;
        let mut idle_calls = 0;
        loop {
            let (used, piece) = unstuffer.next(rest);
            assert!(
                used <= rest.len(),
                "consumed {used} of {} bytes",
                rest.len()
            );
            rest = &rest[used..];
            offset += used;
            match piece {
                Some(Unstuffed::Data(d)) => {
                    idle_calls = if used == 0 { idle_calls + 1 } else { 0 };
                    assert!(idle_calls < 2, "two calls in a row consumed nothing");
                    data.extend_from_slice(d);
                }
                Some(Unstuffed::End) => {
                    assert!(unstuffer.is_done());
                    // Done is sticky and consumes nothing more.
                    assert_eq!(unstuffer.next(rest), (0, Some(Unstuffed::End)));
                    return (data, Some(offset));
                }
                None => {
                    assert!(rest.is_empty(), "None before the chunk was consumed");
                    assert!(!unstuffer.is_done());
                    break;
                }
            }
        }
    }
    (data, None)
}
