//! Line framing: splits received bytes into lines and enforces explicit length limits.
//!
//! POP3 lines end in CRLF; a bare LF is accepted too (telnet users and small embedded clients
//! send it, checklist ROB-2). A bare CR is *not* a line end: `NOOP\rSTAT\r\n` is one line, which
//! the command parser then rejects.
//!
//! Limits count the whole line including its terminator, as RFC 2449 §4 does ("up to 255
//! octets, including the terminating CRLF"). A line that exceeds its limit is reported once as
//! [`Line::TooLong`]; its bytes beyond the point where it became too long are dropped as they
//! arrive and never buffered, so an endless line costs no memory.

use alloc::{collections::VecDeque, vec::Vec};

/// The length limits that apply to the next line, chosen by the state machine that owns the
/// reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineLimit {
    /// Limit for ordinary lines, terminator included.
    pub normal: usize,
    /// Limit for SASL lines: an `AUTH` command with an initial response, and the client's
    /// continuation lines (OAuth tokens are far longer than 255 octets; RFC 5034 §4 puts no
    /// limit on continuation lines, so this one is ours and explicit).
    pub sasl: usize,
    /// The first queued line is a SASL continuation line (the server sent `+ ...`).
    pub awaiting_sasl_line: bool,
}

impl LineLimit {
    /// The same limit for every line.
    pub const fn fixed(limit: usize) -> Self {
        Self {
            normal: limit,
            sasl: limit,
            awaiting_sasl_line: false,
        }
    }
}

/// One framed line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// The line's content, without its CRLF or LF.
    Complete(&'a [u8]),
    /// The line exceeded its limit; its content was discarded.
    TooLong,
}

/// A bounded line reader: bytes in with [`push`](Self::push), lines out with
/// [`peek`](Self::peek) and [`consume`](Self::consume).
///
/// ```
/// use pop3_proto::line::{Line, LineLimit, LineReader};
/// let mut r = LineReader::new();
/// r.push(b"NOOP\r\nST", LineLimit::fixed(255));
/// let (line, len) = r.peek().unwrap();
/// assert_eq!(line, Line::Complete(b"NOOP"));
/// r.consume(len);
/// assert!(r.peek().is_none()); // "ST" is incomplete
/// ```
#[derive(Debug, Default)]
pub struct LineReader {
    buf: Vec<u8>,
    /// First unconsumed byte in `buf`.
    start: usize,
    /// Start of the incomplete last line in `buf` (== `buf.len()` when there is none).
    tail: usize,
    /// Absolute stream offset of `buf[0]`; lets `overlong` survive compaction.
    base: u64,
    /// Absolute offsets of queued lines that stand for an over-long line (each stored as a bare
    /// `\n`). Empty unless a peer sent an over-long line, so it costs nothing normally.
    overlong: VecDeque<u64>,
    /// Inside an over-long line: drop bytes until its LF.
    discarding: bool,
}

/// Capacity kept after the buffer empties; larger buffers (after a long SASL line) are shrunk
/// so an idle connection stays small.
const IDLE_CAPACITY: usize = 512;

impl LineReader {
    /// An empty reader.
    pub const fn new() -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            tail: 0,
            base: 0,
            overlong: VecDeque::new(),
            discarding: false,
        }
    }

    /// Appends received bytes, framing them as they arrive so an over-long line is cut off
    /// at its limit.
    pub fn push(&mut self, mut bytes: &[u8], limit: LineLimit) {
        while !bytes.is_empty() {
            if self.discarding {
                let Some(lf) = memchr::memchr(b'\n', bytes) else {
                    return;
                };
                bytes = &bytes[lf + 1..];
                self.discarding = false;
                self.push_overlong_marker();
                continue;
            }
            let max = self.limit_for_tail(bytes, limit);
            let tail_len = self.buf.len() - self.tail;
            match memchr::memchr(b'\n', bytes) {
                Some(lf) => {
                    if tail_len + lf + 1 > max {
                        self.buf.truncate(self.tail);
                        self.push_overlong_marker();
                    } else {
                        self.buf.extend_from_slice(&bytes[..=lf]);
                        self.tail = self.buf.len();
                    }
                    bytes = &bytes[lf + 1..];
                }
                None => {
                    // Even the LF still to come would not fit: give up on this line now.
                    if tail_len + bytes.len() + 1 > max {
                        self.buf.truncate(self.tail);
                        self.discarding = true;
                    } else {
                        self.buf.extend_from_slice(bytes);
                    }
                    return;
                }
            }
        }
    }

    /// The next complete line and the number of bytes to [`consume`](Self::consume) for it.
    pub fn peek(&self) -> Option<(Line<'_>, usize)> {
        let queued = &self.buf[self.start..self.tail];
        let lf = memchr::memchr(b'\n', queued)?;
        if self.overlong.front() == Some(&(self.base + self.start as u64)) {
            return Some((Line::TooLong, lf + 1));
        }
        let content = &queued[..lf];
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        Some((Line::Complete(content), lf + 1))
    }

    /// Drops `len` bytes of queued lines (a length returned by [`peek`](Self::peek)).
    pub fn consume(&mut self, len: usize) {
        let len = len.min(self.tail - self.start);
        if self.overlong.front() == Some(&(self.base + self.start as u64)) {
            self.overlong.pop_front();
        }
        self.start += len;
        if self.start == self.buf.len() {
            self.base += self.buf.len() as u64;
            self.buf.clear();
            self.start = 0;
            self.tail = 0;
            if self.buf.capacity() > IDLE_CAPACITY {
                self.buf.shrink_to(IDLE_CAPACITY);
            }
        } else if self.start > self.buf.len() / 2 {
            self.base += self.start as u64;
            self.buf.drain(..self.start);
            self.tail -= self.start;
            self.start = 0;
        }
    }

    /// Drops everything buffered, including a partial line (used at STLS, where bytes sent
    /// after the command must not be executed inside TLS: RFC 2595 §4).
    pub fn clear(&mut self) {
        self.base += self.buf.len() as u64;
        self.buf.clear();
        self.start = 0;
        self.tail = 0;
        self.overlong.clear();
        self.discarding = false;
    }

    /// Bytes buffered and not yet consumed.
    pub const fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// True when a complete line is waiting.
    pub fn has_line(&self) -> bool {
        self.start < self.tail
    }

    fn push_overlong_marker(&mut self) {
        self.overlong.push_back(self.base + self.tail as u64);
        self.buf.push(b'\n');
        self.tail = self.buf.len();
    }

    /// The limit for the line being received: SASL lines get the larger one.
    fn limit_for_tail(&self, more: &[u8], limit: LineLimit) -> usize {
        if limit.awaiting_sasl_line && self.start == self.tail {
            return limit.sasl;
        }
        // The first five octets of the line decide whether it is an AUTH command.
        let mut head = [0u8; 5];
        let tail = &self.buf[self.tail..];
        let n = tail.len().min(5);
        head[..n].copy_from_slice(&tail[..n]);
        let m = more.len().min(5 - n);
        head[n..n + m].copy_from_slice(&more[..m]);
        if head.eq_ignore_ascii_case(b"AUTH ") {
            limit.sasl
        } else {
            limit.normal
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::*;

    fn lines(r: &mut LineReader) -> Vec<Option<Vec<u8>>> {
        let mut out = Vec::new();
        while let Some((line, len)) = r.peek() {
            out.push(match line {
                Line::Complete(c) => Some(c.to_vec()),
                Line::TooLong => None,
            });
            r.consume(len);
        }
        out
    }

    const L: LineLimit = LineLimit {
        normal: 10,
        sasl: 40,
        awaiting_sasl_line: false,
    };

    #[test]
    fn crlf_and_bare_lf_end_lines_but_bare_cr_does_not() {
        let mut r = LineReader::new();
        r.push(b"NOOP\r\nSTAT\nA\rB\r\n", L);
        assert_eq!(
            lines(&mut r),
            vec![
                Some(b"NOOP".to_vec()),
                Some(b"STAT".to_vec()),
                Some(b"A\rB".to_vec())
            ]
        );
    }

    #[test]
    fn limit_counts_the_terminator() {
        // "12345678\r\n" is exactly 10 octets: allowed; one more octet is not.
        let mut r = LineReader::new();
        r.push(b"12345678\r\n123456789\r\nOK\r\n", L);
        assert_eq!(
            lines(&mut r),
            vec![Some(b"12345678".to_vec()), None, Some(b"OK".to_vec())]
        );
    }

    #[test]
    fn overlong_line_is_not_buffered_and_reported_once() {
        let mut r = LineReader::new();
        for _ in 0..10_000 {
            r.push(
                b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                L,
            );
            assert!(r.buffered() <= 10);
        }
        r.push(b"AAA\r\nNOOP\r\n", L);
        assert_eq!(lines(&mut r), vec![None, Some(b"NOOP".to_vec())]);
    }

    #[test]
    fn auth_lines_get_the_sasl_limit_whatever_the_chunking() {
        let line = b"auth plain AAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"; // 39 octets
        for split in 0..line.len() {
            let mut r = LineReader::new();
            r.push(&line[..split], L);
            r.push(&line[split..], L);
            assert_eq!(
                lines(&mut r),
                vec![Some(line[..line.len() - 2].to_vec())],
                "split {split}"
            );
        }
        let mut r = LineReader::new();
        r.push(b"USER AAAAAAAAAAAAAAAAA\r\n", L);
        assert_eq!(lines(&mut r), vec![None]);
    }

    #[test]
    fn continuation_line_gets_the_sasl_limit_only_when_first() {
        let awaiting = LineLimit {
            awaiting_sasl_line: true,
            ..L
        };
        let mut r = LineReader::new();
        r.push(b"QUFBQUFBQUFBQUFBQUFB\r\n", awaiting);
        assert_eq!(lines(&mut r), vec![Some(b"QUFBQUFBQUFBQUFBQUFB".to_vec())]);
        let mut r = LineReader::new();
        r.push(b"NOOP\r\nQUFBQUFBQUFBQUFBQUFB\r\n", awaiting);
        assert_eq!(lines(&mut r), vec![Some(b"NOOP".to_vec()), None]);
    }

    #[test]
    fn several_overlong_lines_queue_in_order() {
        let mut r = LineReader::new();
        r.push(b"AAAAAAAAAAAAAAA\r\nOK1\r\nBBBBBBBBBBBBBBBBBBBB\nOK2\n", L);
        assert_eq!(
            lines(&mut r),
            vec![None, Some(b"OK1".to_vec()), None, Some(b"OK2".to_vec())]
        );
    }

    #[test]
    fn byte_at_a_time_equals_one_write() {
        let input = b"NOOP\r\nAAAAAAAAAAAAAAAAAAAAAAAA\r\nauth x AAAAAAAAAAAAAAA\r\nQ\n";
        let mut whole = LineReader::new();
        whole.push(input, L);
        let mut bytewise = LineReader::new();
        for b in input {
            bytewise.push(core::slice::from_ref(b), L);
        }
        assert_eq!(lines(&mut whole), lines(&mut bytewise));
    }

    #[test]
    fn clear_drops_partial_and_queued_lines() {
        let mut r = LineReader::new();
        r.push(b"CAPA\r\nNO", L);
        r.clear();
        r.push(b"OP\r\n", L);
        assert_eq!(lines(&mut r), vec![Some(b"OP".to_vec())]);
    }
}
