//! Multi-line body transfer (RFC 1939 §3, §11).
//!
//! Server side: [`DotStuffer`] turns a stored message (with CRLF, bare LF or
//! bare CR line ends) into the wire form of a RETR or TOP response body:
//! CRLF line ends, dot-stuffed, ending with the `.` terminator line.
//! [`WireSize`] / [`wire_size`] give the octet count LIST and STAT report.
//!
//! Client side: [`DotUnstuffer`] strips the stuffing and finds the
//! terminator in a stream of arbitrary chunks without copying.
//!
//! All three are chunking-invariant: feeding the same bytes in any split
//! gives the same result.

use alloc::vec::Vec;
use core::ops::ControlFlow;

/// One step of normalised output reported by [`LineNormalizer`].
#[derive(Debug, Clone, Copy)]
enum Piece<'a> {
    /// Line content: never empty, never contains CR or LF.
    Text {
        /// The content bytes (a sub-slice of the input).
        bytes: &'a [u8],
        /// `true` when this is the first content of its line.
        line_start: bool,
    },
    /// The end of a line, to be written as CRLF.
    Eol {
        /// `true` when the line had no content.
        blank: bool,
    },
    /// Whole lines that are already in wire form, copied as they are: they
    /// start at a line start, every line ends CRLF, there is no other CR or
    /// LF, and no line but the first starts with `.`. Only reported when the
    /// normaliser is not in line-by-line mode.
    Lines(&'a [u8]),
}

/// Bytes examined at a time when looking for stretches that need no work.
const BLOCK: usize = 64;

/// The longest stretch passed over before looking for wire-form lines again.
const MAX_SKIP: usize = 64 * BLOCK;

/// The length of the longest prefix of `hay` made of whole `BLOCK`-sized
/// blocks in which no byte and its successor satisfy `bad`.
///
/// The branch-free fold over fixed-size blocks compiles to vector compares,
/// which is far cheaper than stopping at every line end of ordinary mail.
#[inline(always)]
fn clean_blocks(hay: &[u8], bad: impl Fn(u8, u8) -> bool) -> usize {
    let mut done = 0;
    while let (Some(here), Some(next)) = (
        hay.get(done..done + BLOCK),
        hay.get(done + 1..done + BLOCK + 1),
    ) {
        if here
            .iter()
            .zip(next)
            .fold(false, |acc, (&x, &y)| acc | bad(x, y))
        {
            break;
        }
        done += BLOCK;
    }
    done
}

/// For input at a line start: the length of the prefix of whole lines that
/// is already in wire form (see [`Piece::Lines`]), and how many bytes were
/// examined to find it.
fn wire_form_prefix(input: &[u8]) -> (usize, usize) {
    // A leading LF is a bare LF; the pair check below only sees it as a successor.
    if input.first() == Some(&b'\n') {
        return (0, BLOCK);
    }
    let clean = clean_blocks(input, |x, y| {
        ((x == b'\r') != (y == b'\n')) | ((x == b'\n') & (y == b'.'))
    });
    let run = input
        .get(..clean)
        .and_then(|c| memchr::memrchr(b'\n', c))
        .map_or(0, |lf| lf + 1);
    (run, clean + BLOCK)
}

/// Walks stored mail and reports content runs and line ends, mapping CRLF,
/// bare LF and bare CR all to one line end.
///
/// This is the single place line ends are interpreted, so the stuffer and the
/// size count cannot disagree.
#[derive(Debug, Clone, Default)]
struct LineNormalizer {
    /// A CR ended the previous chunk; the next byte decides whether it was
    /// the first half of CRLF or a bare CR. Either way it is one line end.
    held_cr: bool,
    /// Content has been reported for the current line.
    mid_line: bool,
    /// Report every line separately (TOP counts lines), never [`Piece::Lines`].
    line_by_line: bool,
}

impl LineNormalizer {
    const fn new(line_by_line: bool) -> Self {
        Self {
            held_cr: false,
            mid_line: false,
            line_by_line,
        }
    }

    /// Reports the pieces of `input` to `sink` until it breaks.
    fn feed<F>(&mut self, mut input: &[u8], mut sink: F) -> ControlFlow<()>
    where
        F: FnMut(Piece<'_>) -> ControlFlow<()>,
    {
        if self.held_cr {
            let Some(&first) = input.first() else {
                return ControlFlow::Continue(());
            };
            self.held_cr = false;
            if first == b'\n' {
                input = input.get(1..).unwrap_or_default();
            }
            self.eol(&mut sink)?;
        }
        // Look for wire-form lines once `input` is no longer than this, so
        // bytes already found to need work are not examined again per line.
        let mut retry_len = if self.line_by_line { 0 } else { input.len() };
        // Mail that is not CRLF (e.g. Maildir's bare LF) never has wire-form
        // lines; look less and less often while the search keeps failing.
        let mut skip = BLOCK;
        loop {
            if !self.mid_line && input.len() <= retry_len && !input.is_empty() {
                let (run, examined) = wire_form_prefix(input);
                skip = if run == 0 {
                    (skip * 2).min(MAX_SKIP)
                } else {
                    BLOCK
                };
                retry_len = input.len().saturating_sub(examined.max(skip));
                let (lines, rest) = input.split_at(run);
                if !lines.is_empty() {
                    sink(Piece::Lines(lines))?;
                }
                input = rest;
            }
            let Some(i) = memchr::memchr2(b'\r', b'\n', input) else {
                return self.text(input, &mut sink);
            };
            let (text, rest) = input.split_at(i);
            self.text(text, &mut sink)?;
            input = match rest {
                [b'\r'] => {
                    self.held_cr = true;
                    return ControlFlow::Continue(());
                }
                [b'\r', b'\n', tail @ ..] | [_, tail @ ..] => tail,
                // memchr2 returned an index inside `input`, so `rest` is non-empty.
                [] => return ControlFlow::Continue(()),
            };
            self.eol(&mut sink)?;
        }
    }

    /// Ends the input: a held CR or an unterminated last line becomes a line end.
    fn finish<F>(&mut self, mut sink: F) -> ControlFlow<()>
    where
        F: FnMut(Piece<'_>) -> ControlFlow<()>,
    {
        if self.held_cr || self.mid_line {
            self.held_cr = false;
            self.eol(&mut sink)
        } else {
            ControlFlow::Continue(())
        }
    }

    fn text<F>(&mut self, bytes: &[u8], sink: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Piece<'_>) -> ControlFlow<()>,
    {
        if bytes.is_empty() {
            return ControlFlow::Continue(());
        }
        let line_start = !self.mid_line;
        self.mid_line = true;
        sink(Piece::Text { bytes, line_start })
    }

    fn eol<F>(&mut self, sink: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Piece<'_>) -> ControlFlow<()>,
    {
        let blank = !self.mid_line;
        self.mid_line = false;
        sink(Piece::Eol { blank })
    }
}

/// Whether a [`DotStuffer`] wants more input.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Keep feeding the message.
    More,
    /// The TOP line limit has been reached (or the stuffer is finished):
    /// further input is ignored, so the caller may stop reading and call
    /// [`DotStuffer::finish`].
    Done,
}

/// What to send of the message, and where we are in it.
#[derive(Debug, Clone, Default)]
struct Selection {
    /// Body lines still to send for TOP; `None` sends everything (RETR).
    body_left: Option<u64>,
    /// The blank line ending the headers has been sent.
    in_body: bool,
    /// At least one byte of the message has been seen.
    started: bool,
}

impl Selection {
    /// Writes one normalised piece, dot-stuffed; breaks when TOP is satisfied.
    fn emit(&mut self, piece: Piece<'_>, out: &mut Vec<u8>) -> ControlFlow<()> {
        match piece {
            // Both start at a line start or within a line, as `line_start` says.
            Piece::Text {
                bytes,
                line_start: true,
            }
            | Piece::Lines(bytes) => {
                if bytes.first() == Some(&b'.') {
                    out.push(b'.');
                }
                out.extend_from_slice(bytes);
                ControlFlow::Continue(())
            }
            Piece::Text { bytes, .. } => {
                out.extend_from_slice(bytes);
                ControlFlow::Continue(())
            }
            Piece::Eol { blank } => {
                out.extend_from_slice(b"\r\n");
                let Some(left) = &mut self.body_left else {
                    return ControlFlow::Continue(());
                };
                if self.in_body {
                    *left = left.saturating_sub(1);
                } else if blank {
                    self.in_body = true;
                } else {
                    return ControlFlow::Continue(());
                }
                if *left == 0 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            }
        }
    }
}

/// Server-side encoder for a RETR or TOP response body.
///
/// Feed the stored message with [`stuff`](Self::stuff) in chunks of any size,
/// then call [`finish`](Self::finish). The output has CRLF line ends, an
/// extra `.` before every line that starts with `.`, and ends with `.\r\n`.
#[derive(Debug, Clone, Default)]
pub struct DotStuffer {
    norm: LineNormalizer,
    sel: Selection,
    /// The TOP limit was reached; the rest of the message is skipped.
    limit_hit: bool,
    /// `finish` has run; nothing more is written.
    spent: bool,
}

impl DotStuffer {
    /// A stuffer for the whole message (RETR).
    #[must_use]
    pub const fn new() -> Self {
        Self::with_limit(None)
    }

    /// A stuffer for TOP: the header lines, the blank line ending them, then
    /// at most `body_lines` lines of the body.
    ///
    /// If the message ends inside the headers, [`finish`](Self::finish) adds
    /// the missing blank line (as Dovecot's `oe-ns-eoh` does), since clients
    /// expect TOP output to contain a complete header section.
    #[must_use]
    pub const fn top(body_lines: u64) -> Self {
        Self::with_limit(Some(body_lines))
    }

    const fn with_limit(body_left: Option<u64>) -> Self {
        Self {
            // TOP counts lines, so it needs them one at a time.
            norm: LineNormalizer::new(body_left.is_some()),
            sel: Selection {
                body_left,
                in_body: false,
                started: false,
            },
            limit_hit: false,
            spent: false,
        }
    }

    /// Appends the wire form of the next chunk of the stored message to `out`.
    ///
    /// Returns [`Progress::Done`] once the TOP limit has been reached; from
    /// then on input is ignored.
    pub fn stuff(&mut self, raw: &[u8], out: &mut Vec<u8>) -> Progress {
        if self.limit_hit || self.spent {
            return Progress::Done;
        }
        self.sel.started |= !raw.is_empty();
        // RETR output is about as long as the input (plus a CR per bare LF and
        // the odd stuffing dot); for TOP the input may be mostly skipped.
        let hint = match self.sel.body_left {
            None => raw.len() + raw.len() / 64 + 3,
            Some(_) => raw.len().min(8 * 1024),
        };
        // Only a hint: if it cannot be had, extending grows the buffer as usual.
        let _ = out.try_reserve(hint);
        let sel = &mut self.sel;
        if self.norm.feed(raw, |p| sel.emit(p, out)).is_break() {
            self.limit_hit = true;
            return Progress::Done;
        }
        Progress::More
    }

    /// Completes the body: ends an unterminated last line, adds the blank
    /// line TOP needs when the message had no end of headers, and writes the
    /// terminator `.\r\n`.
    ///
    /// Afterwards the stuffer is spent: further calls append nothing.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.spent {
            return;
        }
        self.spent = true;
        if !self.limit_hit {
            let sel = &mut self.sel;
            if self.norm.finish(|p| sel.emit(p, out)).is_break() {
                self.limit_hit = true;
            }
        }
        // An empty message has no header section to complete.
        if self.sel.body_left.is_some() && !self.sel.in_body && self.sel.started {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// Counts the octets of a message as RETR delivers it: after line-end
/// normalisation, before dot-stuffing, without the terminator. This is the
/// size LIST and STAT report (RFC 1939 §5).
#[derive(Debug, Clone, Default)]
pub struct WireSize {
    norm: LineNormalizer,
    octets: u64,
}

impl WireSize {
    /// A counter for an empty message.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            norm: LineNormalizer::new(false),
            octets: 0,
        }
    }

    /// Counts the next chunk of the stored message.
    pub fn feed(&mut self, raw: &[u8]) {
        let octets = &mut self.octets;
        let flow = self.norm.feed(raw, |p| {
            *octets = octets.saturating_add(piece_len(p));
            ControlFlow::Continue(())
        });
        debug_assert!(flow.is_continue());
    }

    /// The total, including the CRLF an unterminated last line will get.
    #[must_use]
    pub fn finish(mut self) -> u64 {
        let octets = &mut self.octets;
        let flow = self.norm.finish(|p| {
            *octets = octets.saturating_add(piece_len(p));
            ControlFlow::Continue(())
        });
        debug_assert!(flow.is_continue());
        self.octets
    }
}

/// Octets a piece occupies on the wire before stuffing.
fn piece_len(piece: Piece<'_>) -> u64 {
    match piece {
        // usize is at most 64 bits on every supported target.
        Piece::Text { bytes, .. } | Piece::Lines(bytes) => {
            u64::try_from(bytes.len()).unwrap_or(u64::MAX)
        }
        Piece::Eol { .. } => 2,
    }
}

/// The RETR size of a whole stored message; see [`WireSize`].
#[must_use]
pub fn wire_size(raw: &[u8]) -> u64 {
    let mut size = WireSize::new();
    size.feed(raw);
    size.finish()
}

/// A piece of a multi-line response produced by [`DotUnstuffer::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unstuffed<'a> {
    /// Message data with stuffing removed: a sub-slice of the input, or a
    /// short static slice for bytes held over from an earlier chunk.
    Data(&'a [u8]),
    /// The terminator line has been consumed; the body is complete.
    End,
}

/// Where the unstuffer is within the current line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum UnstuffState {
    /// Nothing of the current line seen yet.
    #[default]
    LineStart,
    /// A `.` opened the line: the terminator, or a stuffing dot to drop.
    Dot,
    /// `.\r` opened the line: the terminator if LF follows, otherwise the
    /// dot is dropped and the CR is data.
    DotCr,
    /// Inside a line whose start has been decided.
    MidLine,
    /// The terminator has been consumed.
    Done,
}

/// Client-side decoder for a multi-line response body.
///
/// Feed the bytes after the `+OK` status line to [`next`](Self::next)
/// repeatedly. Data comes back exactly as received (CRLF or bare LF line
/// ends) minus the stuffing dots, as slices of the input wherever possible.
#[derive(Debug, Clone, Default)]
pub struct DotUnstuffer {
    state: UnstuffState,
}

impl DotUnstuffer {
    /// A decoder at the start of a body.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            state: UnstuffState::LineStart,
        }
    }

    /// `true` once the terminator line has been consumed.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.state == UnstuffState::Done
    }

    /// Consumes a prefix of `input` and returns how many bytes were consumed
    /// and the next piece:
    ///
    /// - `Some(Data(slice))`: message data, up to the next line that starts
    ///   with `.` (where a decision is needed) or the end of `input`;
    /// - `Some(End)`: the terminator was consumed; bytes after it are left
    ///   unconsumed as they belong to the next response. Once done, every
    ///   call returns `(0, Some(End))`;
    /// - `None`: all of `input` was consumed (possibly holding a line-start
    ///   `.`) and more is needed.
    pub fn next<'a>(&mut self, input: &'a [u8]) -> (usize, Option<Unstuffed<'a>>) {
        let mut pos = 0;
        loop {
            let Some(&byte) = input.get(pos) else {
                let piece = (self.state == UnstuffState::Done).then_some(Unstuffed::End);
                return (pos, piece);
            };
            match self.state {
                UnstuffState::Done => return (pos, Some(Unstuffed::End)),
                UnstuffState::LineStart if byte == b'.' => {
                    pos += 1;
                    self.state = UnstuffState::Dot;
                }
                UnstuffState::Dot if byte == b'\r' => {
                    pos += 1;
                    self.state = UnstuffState::DotCr;
                }
                UnstuffState::Dot | UnstuffState::DotCr if byte == b'\n' => {
                    self.state = UnstuffState::Done;
                    return (pos + 1, Some(Unstuffed::End));
                }
                UnstuffState::DotCr => {
                    // The CR after the dropped dot is data. If it arrived in
                    // this chunk, return it as part of the slice.
                    return match pos.checked_sub(1) {
                        Some(cr) => self.data(input, cr, pos),
                        None => {
                            self.state = UnstuffState::MidLine;
                            (0, Some(Unstuffed::Data(b"\r")))
                        }
                    };
                }
                // Line start without a dot, a dropped stuffing dot, or the
                // middle of a line: data starts here.
                UnstuffState::LineStart | UnstuffState::Dot | UnstuffState::MidLine => {
                    return self.data(input, pos, pos);
                }
            }
        }
    }

    /// Returns data from `start`, scanning for line ends from `scan`, and
    /// stops before the next line that starts with `.` or at the end of input.
    fn data<'a>(
        &mut self,
        input: &'a [u8],
        start: usize,
        mut scan: usize,
    ) -> (usize, Option<Unstuffed<'a>>) {
        let tail = input.get(start..).unwrap_or_default();
        loop {
            // Skip stretches with no line starting with `.` a block at a time.
            scan += clean_blocks(input.get(scan..).unwrap_or_default(), |x, y| {
                (x == b'\n') & (y == b'.')
            });
            let Some(lf) = input
                .get(scan..)
                .and_then(|rest| memchr::memchr(b'\n', rest))
            else {
                self.state = UnstuffState::MidLine;
                return (input.len(), Some(Unstuffed::Data(tail)));
            };
            let next_line = scan + lf + 1;
            match input.get(next_line) {
                Some(&b) if b != b'.' => scan = next_line,
                _ => {
                    self.state = UnstuffState::LineStart;
                    let data = input.get(start..next_line).unwrap_or_default();
                    return (next_line, Some(Unstuffed::Data(data)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Fixtures from the conformance checklist.
    const M1: &[u8] = b"From: a@example.com\r\nSubject: one\r\n\r\nline1\r\nline2\r\nline3\r\n";
    const M2: &[u8] = b"Subject: dots\r\n\r\n.\r\n..\r\n.hidden\r\nend\r\n";
    const M2_WIRE: &[u8] = b"Subject: dots\r\n\r\n..\r\n...\r\n..hidden\r\nend\r\n.\r\n";
    const M3: &[u8] = b"Subject: lf\n\nbody1\nbody2";
    const M3_WIRE: &[u8] = b"Subject: lf\r\n\r\nbody1\r\nbody2\r\n.\r\n";
    const M4: &[u8] = b"Subject: nobody\r\n";
    const MSG4: &[u8] = b"x\n.\ny";
    const ROB11: &[u8] = b"a\r.b\r\n";

    fn m5() -> Vec<u8> {
        let mut m = b"Subject: bin\r\n\r\ncaf\xE9 \x00 x\r\n".to_vec();
        m.extend(core::iter::repeat_n(b'A', 3000));
        m.extend_from_slice(b"\r\n");
        m
    }

    /// Long enough to take the wire-form fast path, with the odd line that
    /// needs work (dot lines, a bare LF, a bare CR) in between.
    fn long_fixture() -> Vec<u8> {
        let mut m = b"From: a@example.com\r\nSubject: long\r\n\r\n".to_vec();
        for i in 0..200 {
            let line = match i % 37 {
                5 => alloc::format!(".dot line {i}\r\n"),
                11 => alloc::format!("bare lf {i}\n"),
                23 => alloc::format!("bare cr {i}\r"),
                29 => alloc::format!("..two dots {i}\r\n"),
                _ => alloc::format!("line {i} of the body, long enough to span blocks\r\n"),
            };
            m.extend_from_slice(line.as_bytes());
        }
        m
    }

    fn fixtures() -> Vec<Vec<u8>> {
        let mut all: Vec<Vec<u8>> = [M1, M2, M3, M4, MSG4, ROB11, b"", b"\r", b".", b"\r\n.\r"]
            .iter()
            .map(|m| m.to_vec())
            .collect();
        all.push(m5());
        all.push(M2_WIRE.to_vec());
        all.push(long_fixture());
        all
    }

    /// Runs a stuffer over `chunks`, then finishes it.
    fn stuff_chunks<'a>(mut st: DotStuffer, chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in chunks {
            let _ = st.stuff(chunk, &mut out);
        }
        st.finish(&mut out);
        out
    }

    fn retr(raw: &[u8]) -> Vec<u8> {
        stuff_chunks(DotStuffer::new(), [raw])
    }

    fn top(raw: &[u8], n: u64) -> Vec<u8> {
        stuff_chunks(DotStuffer::top(n), [raw])
    }

    fn size_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> u64 {
        let mut ws = WireSize::new();
        for chunk in chunks {
            ws.feed(chunk);
        }
        ws.finish()
    }

    /// Unstuffs `chunks` in order; returns the data, whether the terminator
    /// was seen, and the bytes left unconsumed after it.
    fn unstuff_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<u8>, bool, Vec<u8>) {
        let mut u = DotUnstuffer::new();
        let mut data = Vec::new();
        let mut left = Vec::new();
        for chunk in chunks {
            if u.is_done() {
                left.extend_from_slice(chunk);
                continue;
            }
            let mut buf = chunk;
            loop {
                let (n, piece) = u.next(buf);
                assert!(n <= buf.len());
                buf = &buf[n..];
                match piece {
                    None => {
                        assert!(buf.is_empty(), "None must consume everything");
                        break;
                    }
                    Some(Unstuffed::Data(d)) => {
                        assert!(!d.is_empty() || n > 0, "no progress");
                        data.extend_from_slice(d);
                    }
                    Some(Unstuffed::End) => {
                        left.extend_from_slice(buf);
                        break;
                    }
                }
            }
        }
        (data, u.is_done(), left)
    }

    fn bytewise(data: &[u8]) -> impl Iterator<Item = &[u8]> {
        data.chunks(1)
    }

    /// Splits `data` at the given cut points (duplicates give empty chunks).
    fn split_at_cuts<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c % (data.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut from = 0;
        for c in cuts {
            chunks.push(&data[from..c]);
            from = c;
        }
        chunks.push(&data[from..]);
        chunks
    }

    /// Deterministic pseudo-random cut points (xorshift), for the fixed tests.
    fn pseudo_cuts(seed: u64, count: usize) -> Vec<usize> {
        let mut x = seed | 1;
        (0..count)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 4096) as usize
            })
            .collect()
    }

    /// Independent byte-by-byte model of the line-end normalisation.
    fn model_normalise(raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
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
        if !out.is_empty() && !out.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// Lines of normalised text, each without its CRLF.
    fn model_lines(normalised: &[u8]) -> Vec<&[u8]> {
        let mut lines: Vec<&[u8]> = normalised.split(|&b| b == b'\n').collect();
        lines.pop(); // after the final LF
        lines
            .into_iter()
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect()
    }

    /// Independent model of RETR/TOP output.
    fn model_stuff(raw: &[u8], limit: Option<u64>) -> Vec<u8> {
        let norm = model_normalise(raw);
        let lines = model_lines(&norm);
        let mut selected = Vec::new();
        let mut in_body = false;
        let mut body = 0u64;
        for line in &lines {
            if limit.is_some_and(|n| in_body && body >= n) {
                break;
            }
            selected.push(*line);
            if in_body {
                body += 1;
            } else if line.is_empty() {
                in_body = true;
            }
        }
        if limit.is_some() && !in_body && !raw.is_empty() {
            selected.push(b"");
        }
        let mut out = Vec::new();
        for line in selected {
            if line.first() == Some(&b'.') {
                out.push(b'.');
            }
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        out
    }

    /// Independent model of unstuffing a complete buffer.
    fn model_unstuff(wire: &[u8]) -> (Vec<u8>, bool, Vec<u8>) {
        let mut data = Vec::new();
        let mut pos = 0;
        while pos < wire.len() {
            let end = wire[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(wire.len(), |i| pos + i + 1);
            let line = &wire[pos..end];
            if line == b".\r\n" || line == b".\n" {
                return (data, true, wire[end..].to_vec());
            }
            data.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
            pos = end;
        }
        (data, false, Vec::new())
    }

    // ---- DotStuffer: RETR ----

    #[test]
    fn m1_retr_is_unchanged_plus_terminator() {
        let mut want = M1.to_vec();
        want.extend_from_slice(b".\r\n");
        assert_eq!(retr(M1), want);
    }

    #[test]
    fn r1939_gen_7_m2_dot_lines_are_stuffed() {
        assert_eq!(retr(M2), M2_WIRE);
    }

    #[test]
    fn r1939_msg_1_msg_3_m3_bare_lf_and_unterminated_last_line() {
        assert_eq!(retr(M3), M3_WIRE);
    }

    #[test]
    fn r1939_top_6_m4_retr_adds_no_blank_line() {
        assert_eq!(retr(M4), b"Subject: nobody\r\n.\r\n");
    }

    #[test]
    fn m5_binary_bytes_pass_through() {
        let m = m5();
        let mut want = m.clone();
        want.extend_from_slice(b".\r\n");
        assert_eq!(retr(&m), want);
    }

    #[test]
    fn r1939_msg_4_stuffing_decided_after_normalisation() {
        assert_eq!(retr(MSG4), b"x\r\n..\r\ny\r\n.\r\n");
    }

    #[test]
    fn rob_11_bare_cr_ends_a_line() {
        assert_eq!(retr(ROB11), b"a\r\n..b\r\n.\r\n");
    }

    #[test]
    fn empty_message_is_just_terminator() {
        assert_eq!(retr(b""), b".\r\n");
        assert_eq!(top(b"", 0), b".\r\n");
    }

    #[test]
    fn held_cr_at_end_is_a_line_end() {
        assert_eq!(retr(b"a\r"), b"a\r\n.\r\n");
        assert_eq!(
            stuff_chunks(DotStuffer::new(), [&b"a\r"[..], b"\n"]),
            b"a\r\n.\r\n"
        );
        assert_eq!(
            stuff_chunks(DotStuffer::new(), [&b"a\r"[..], b"."]),
            b"a\r\n..\r\n.\r\n"
        );
        assert_eq!(retr(b"\r\r\n\n"), b"\r\n\r\n\r\n.\r\n");
    }

    #[test]
    fn dot_only_not_at_line_start_is_not_stuffed() {
        assert_eq!(retr(b"a.b\r\n x.\r\n"), b"a.b\r\n x.\r\n.\r\n");
        // A dot split from its line start by a chunk boundary still counts.
        assert_eq!(
            stuff_chunks(DotStuffer::new(), [&b"a\r\n"[..], b"", b".b"]),
            b"a\r\n..b\r\n.\r\n"
        );
    }

    #[test]
    fn finish_is_idempotent_and_spends_the_stuffer() {
        let mut st = DotStuffer::new();
        let mut out = Vec::new();
        assert_eq!(st.stuff(b"a", &mut out), Progress::More);
        st.finish(&mut out);
        assert_eq!(out, b"a\r\n.\r\n");
        assert_eq!(st.stuff(b"more\r\n", &mut out), Progress::Done);
        st.finish(&mut out);
        assert_eq!(out, b"a\r\n.\r\n");
    }

    #[test]
    fn default_is_retr() {
        assert_eq!(stuff_chunks(DotStuffer::default(), [M1]), retr(M1));
        assert_ne!(retr(M1), top(M1, 0));
    }

    // ---- DotStuffer: TOP ----

    #[test]
    fn r1939_top_2_m1_top_2() {
        assert_eq!(
            top(M1, 2),
            b"From: a@example.com\r\nSubject: one\r\n\r\nline1\r\nline2\r\n.\r\n"
        );
    }

    #[test]
    fn r1939_top_3_m1_top_0_is_headers_and_blank_line() {
        assert_eq!(
            top(M1, 0),
            b"From: a@example.com\r\nSubject: one\r\n\r\n.\r\n"
        );
    }

    #[test]
    fn r1939_top_4_large_counts_equal_retr() {
        // Messages with an end of headers: TOP adds nothing of its own.
        let with_eoh = fixtures()
            .into_iter()
            .filter(|m| model_lines(&model_normalise(m)).contains(&&b""[..]));
        for m in with_eoh {
            let m = m.as_slice();
            if model_lines(&model_normalise(m)).len() <= 100 {
                assert_eq!(top(m, 100), retr(m), "{:?}", m.escape_ascii());
            }
            assert_eq!(top(m, u64::MAX), retr(m), "{:?}", m.escape_ascii());
        }
        assert_eq!(top(M1, 3), retr(M1));
    }

    #[test]
    fn r1939_top_5_m2_top_3_stuffs_dot_lines() {
        assert_eq!(
            top(M2, 3),
            b"Subject: dots\r\n\r\n..\r\n...\r\n..hidden\r\n.\r\n"
        );
    }

    #[test]
    fn r1939_top_6_m4_top_adds_missing_blank_line() {
        assert_eq!(top(M4, 0), b"Subject: nobody\r\n\r\n.\r\n");
        assert_eq!(top(M4, 5), b"Subject: nobody\r\n\r\n.\r\n");
        assert_eq!(top(b"Subject: x", 1), b"Subject: x\r\n\r\n.\r\n");
        assert_eq!(top(b"Subject: x\r", 1), b"Subject: x\r\n\r\n.\r\n");
    }

    #[test]
    fn top_reports_done_and_ignores_the_rest() {
        let mut st = DotStuffer::top(1);
        let mut out = Vec::new();
        assert_eq!(st.stuff(b"H: v\r\n\r\nb1", &mut out), Progress::More);
        assert_eq!(st.stuff(b"\r\nb2\r\n", &mut out), Progress::Done);
        assert_eq!(st.stuff(b".b3\r\n", &mut out), Progress::Done);
        st.finish(&mut out);
        assert_eq!(out, b"H: v\r\n\r\nb1\r\n.\r\n");
    }

    #[test]
    fn top_0_done_at_end_of_headers() {
        let mut st = DotStuffer::top(0);
        let mut out = Vec::new();
        assert_eq!(st.stuff(b"H: v\n\nbody", &mut out), Progress::Done);
        st.finish(&mut out);
        assert_eq!(out, b"H: v\r\n\r\n.\r\n");
    }

    #[test]
    fn top_header_end_by_bare_cr() {
        // `\r\r` is a line end followed by a blank line.
        assert_eq!(top(b"H: v\r\rb1\rb2\r", 1), b"H: v\r\n\r\nb1\r\n.\r\n");
    }

    #[test]
    fn top_unterminated_last_body_line_counts() {
        assert_eq!(top(b"H: v\n\n.b1", 1), b"H: v\r\n\r\n..b1\r\n.\r\n");
        assert_eq!(top(b"H: v\n\n.b1", 0), b"H: v\r\n\r\n.\r\n");
    }

    #[test]
    fn long_message_matches_model_and_keeps_lines_intact() {
        let m = long_fixture();
        let wire = retr(&m);
        assert_eq!(wire, model_stuff(&m, None));
        let contains = |needle: &[u8]| wire.windows(needle.len()).any(|w| w == needle);
        assert!(contains(b"\r\n..dot line 5\r\n"));
        assert!(contains(b"\r\n...two dots 29\r\n"));
        assert!(contains(b"\r\nbare lf 11\r\nline 12 "));
        assert!(contains(b"\r\nbare cr 23\r\nline 24 "));
        assert_eq!(top(&m, 7), model_stuff(&m, Some(7)));
    }

    #[test]
    fn wire_form_prefix_stops_at_lines_needing_work() {
        let clean = b"0123456789abcdef0123456789abcde\r\n".repeat(8); // 8 x 33 bytes
        let (run, _) = wire_form_prefix(&clean);
        // Whole 64-byte blocks are checked with one byte of lookahead: 256 of
        // the 264 bytes qualify, trimmed back to the last complete line.
        assert_eq!(run, 7 * 33);
        assert_eq!(clean[run - 1], b'\n');

        for bad in [&b"\n"[..], b"\r", b"\r\n."] {
            let mut m = clean.clone();
            m.splice(40..40, bad.iter().copied());
            let (run, _) = wire_form_prefix(&m);
            assert!(run <= 33, "{:?}: {run}", bad.escape_ascii());
        }
        // A bare LF (or a bare CR) right at a line start, in front of clean lines.
        for lead in [&b"\n"[..], b"\r", b"x\r\n\n", b"x\n\r"] {
            let mut m = lead.to_vec();
            m.extend_from_slice(&clean);
            let want = model_stuff(&m, None);
            assert_eq!(retr(&m), want, "{:?}", lead.escape_ascii());
            let (head, tail) = m.split_at(lead.len() - 1);
            assert_eq!(stuff_chunks(DotStuffer::new(), [head, tail]), want);
            assert_eq!(wire_size(&m), model_normalise(&m).len() as u64);
        }
        assert_eq!(wire_form_prefix(b"\nabc").0, 0);
        assert_eq!(wire_form_prefix(b"short\r\n").0, 0);
    }

    // ---- Wire size ----

    #[test]
    fn fixture_sizes() {
        assert_eq!(wire_size(M1), 58);
        assert_eq!(wire_size(M2), 38);
        assert_eq!(wire_size(M3), 29);
        assert_eq!(wire_size(M4), 17);
        assert_eq!(wire_size(&m5()), 3028);
        assert_eq!(wire_size(MSG4), 9);
        assert_eq!(wire_size(ROB11), 7);
        assert_eq!(wire_size(b""), 0);
        assert_eq!(wire_size(b"\r"), 2);
    }

    #[test]
    fn wire_size_matches_unstuffed_payload() {
        for m in fixtures() {
            let (data, done, _) = unstuff_chunks([retr(&m).as_slice()]);
            assert!(done);
            assert_eq!(wire_size(&m), data.len() as u64, "{:?}", m.escape_ascii());
        }
    }

    // ---- DotUnstuffer ----

    #[test]
    fn r1939_gen_8_m2_wire_unstuffs_to_m2() {
        let (data, done, left) = unstuff_chunks([M2_WIRE]);
        assert!(done);
        assert_eq!(data, M2);
        assert!(left.is_empty());
    }

    #[test]
    fn r1939_gen_9_dot_removal_only_at_line_start() {
        let (data, done, _) = unstuff_chunks([&b"x.\r\n..\r\n.\r\n"[..]]);
        assert!(done);
        assert_eq!(data, b"x.\r\n.\r\n");
    }

    #[test]
    fn bare_lf_terminator_and_lines() {
        let (data, done, left) = unstuff_chunks([&b"a\n..b\n.\n+OK"[..]]);
        assert!(done);
        assert_eq!(data, b"a\n.b\n");
        assert_eq!(left, b"+OK");
    }

    #[test]
    fn bytes_after_terminator_not_consumed() {
        let wire = b"line\r\n.\r\n+OK next\r\n";
        let mut u = DotUnstuffer::new();
        assert_eq!(u.next(wire), (6, Some(Unstuffed::Data(b"line\r\n"))));
        assert!(!u.is_done());
        assert_eq!(u.next(&wire[6..]), (3, Some(Unstuffed::End)));
        assert!(u.is_done());
        // Once done, nothing more is consumed.
        assert_eq!(u.next(&wire[9..]), (0, Some(Unstuffed::End)));
    }

    #[test]
    fn dot_then_other_bytes() {
        let cases: &[(&[u8], &[u8])] = &[
            (b".x\r\n.\r\n", b"x\r\n"),
            (b".\rX\r\n.\r\n", b"\rX\r\n"),
            (b"..\r\n.\r\n", b".\r\n"),
            (b".\r\r\n.\r\n", b"\r\r\n"),
            (b"...\n.\n", b"..\n"),
        ];
        for &(wire, want) in cases {
            let (data, done, _) = unstuff_chunks([wire]);
            assert!(done, "{:?}", wire.escape_ascii());
            assert_eq!(data, want, "{:?}", wire.escape_ascii());
            let (data, done, _) = unstuff_chunks(bytewise(wire));
            assert!(done);
            assert_eq!(data, want, "bytewise {:?}", wire.escape_ascii());
        }
    }

    #[test]
    fn held_dot_consumes_without_data() {
        let mut u = DotUnstuffer::new();
        assert_eq!(u.next(b"ab\r\n"), (4, Some(Unstuffed::Data(b"ab\r\n"))));
        assert_eq!(u.next(b"."), (1, None));
        assert_eq!(u.next(b"\r"), (1, None));
        assert_eq!(u.next(b"Z\n"), (0, Some(Unstuffed::Data(b"\r"))));
        assert_eq!(u.next(b"Z\n"), (2, Some(Unstuffed::Data(b"Z\n"))));
        assert_eq!(u.next(b".\r\n"), (3, Some(Unstuffed::End)));
    }

    #[test]
    fn dot_cr_in_same_chunk_returns_one_slice() {
        let mut u = DotUnstuffer::new();
        let wire = b".\rX\r\nmore\r\n.\r\n";
        assert_eq!(
            u.next(wire),
            (11, Some(Unstuffed::Data(b"\rX\r\nmore\r\n")))
        );
        assert_eq!(u.next(&wire[11..]), (3, Some(Unstuffed::End)));
    }

    #[test]
    fn long_run_without_dot_lines_is_one_slice() {
        let mut body = Vec::new();
        for i in 0..1000 {
            body.extend_from_slice(alloc::format!("line {i}\r\n").as_bytes());
        }
        let len = body.len();
        body.extend_from_slice(b".\r\n");
        let mut u = DotUnstuffer::new();
        let (n, piece) = u.next(&body);
        assert_eq!(n, len);
        assert_eq!(piece, Some(Unstuffed::Data(&body[..len])));
        assert_eq!(u.next(&body[len..]), (3, Some(Unstuffed::End)));
    }

    #[test]
    fn unterminated_stream_is_not_done() {
        let (data, done, _) = unstuff_chunks([&b"a\r\n.\r"[..]]);
        assert!(!done);
        assert_eq!(data, b"a\r\n");
        let mut u = DotUnstuffer::new();
        assert_eq!(u.next(b""), (0, None));
    }

    // ---- Chunking invariance on the fixtures ----

    #[test]
    fn fixtures_bytewise_and_random_splits_match_one_write() {
        for m in fixtures() {
            let stuffers = [
                DotStuffer::new(),
                DotStuffer::top(0),
                DotStuffer::top(1),
                DotStuffer::top(2),
            ];
            for st in stuffers {
                let whole = stuff_chunks(st.clone(), [m.as_slice()]);
                assert_eq!(
                    stuff_chunks(st.clone(), bytewise(&m)),
                    whole,
                    "{:?}",
                    m.escape_ascii()
                );
                for seed in 1..20 {
                    let chunks = split_at_cuts(&m, &pseudo_cuts(seed, 6));
                    assert_eq!(stuff_chunks(st.clone(), chunks), whole, "seed {seed}");
                }
            }

            let size = wire_size(&m);
            assert_eq!(size_chunks(bytewise(&m)), size);
            for seed in 1..20 {
                assert_eq!(size_chunks(split_at_cuts(&m, &pseudo_cuts(seed, 6))), size);
            }

            let wire = retr(&m);
            let whole = unstuff_chunks([wire.as_slice()]);
            assert_eq!(unstuff_chunks(bytewise(&wire)), whole);
            for seed in 1..20 {
                assert_eq!(
                    unstuff_chunks(split_at_cuts(&wire, &pseudo_cuts(seed, 6))),
                    whole
                );
            }
        }
    }

    #[test]
    fn models_agree_on_fixtures() {
        for m in fixtures() {
            assert_eq!(retr(&m), model_stuff(&m, None), "{:?}", m.escape_ascii());
            for n in 0..4 {
                assert_eq!(
                    top(&m, n),
                    model_stuff(&m, Some(n)),
                    "top {n} {:?}",
                    m.escape_ascii()
                );
            }
        }
    }

    // ---- Properties ----

    /// Bytes biased towards the ones that matter here.
    fn mail_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                3 => Just(b'\r'),
                3 => Just(b'\n'),
                3 => Just(b'.'),
                1 => Just(b'a'),
                2 => any::<u8>(),
            ],
            0..200,
        )
    }

    /// Mostly well-formed CRLF lines, long enough for the block fast paths,
    /// with the occasional dot line, bare LF, bare CR or missing line end.
    fn long_mail() -> impl Strategy<Value = Vec<u8>> {
        let line = prop::collection::vec(
            prop_oneof![12 => Just(b'a'), 1 => Just(b'.'), 1 => Just(b' ')],
            0..90,
        );
        let eol = prop_oneof![
            24 => Just(&b"\r\n"[..]),
            1 => Just(&b"\n"[..]),
            1 => Just(&b"\r"[..]),
            1 => Just(&b""[..]),
        ];
        prop::collection::vec((line, eol), 0..40).prop_map(|lines| {
            let mut m = Vec::new();
            for (text, eol) in lines {
                m.extend_from_slice(&text);
                m.extend_from_slice(eol);
            }
            m
        })
    }

    fn input() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![mail_bytes(), long_mail()]
    }

    fn cuts() -> impl Strategy<Value = Vec<usize>> {
        prop::collection::vec(0usize..4096, 0..12)
    }

    proptest! {
        #[test]
        fn prop_stuffer_chunking_invariant(raw in input(), cuts in cuts(), n in 0u64..4) {
            for st in [DotStuffer::new(), DotStuffer::top(n)] {
                let whole = stuff_chunks(st.clone(), [raw.as_slice()]);
                prop_assert_eq!(stuff_chunks(st, split_at_cuts(&raw, &cuts)), whole);
            }
            prop_assert_eq!(size_chunks(split_at_cuts(&raw, &cuts)), wire_size(&raw));
        }

        #[test]
        fn prop_stuffer_matches_model(raw in input(), n in 0u64..4) {
            prop_assert_eq!(retr(&raw), model_stuff(&raw, None));
            prop_assert_eq!(top(&raw, n), model_stuff(&raw, Some(n)));
        }

        #[test]
        fn prop_roundtrip_and_size(raw in input(), cuts in cuts()) {
            let wire = retr(&raw);
            let (data, done, left) = unstuff_chunks(split_at_cuts(&wire, &cuts));
            prop_assert!(done);
            prop_assert!(left.is_empty());
            let norm = model_normalise(&raw);
            prop_assert_eq!(&data, &norm);
            prop_assert_eq!(wire_size(&raw), norm.len() as u64);
        }

        #[test]
        fn prop_unstuffer_chunking_invariant(raw in input(), cuts in cuts()) {
            let mut wire = raw;
            wire.extend_from_slice(b"\r\n.\r\n");
            let whole = unstuff_chunks([wire.as_slice()]);
            prop_assert!(whole.1);
            prop_assert_eq!(&whole, &model_unstuff(&wire));
            prop_assert_eq!(&unstuff_chunks(split_at_cuts(&wire, &cuts)), &whole);
            prop_assert_eq!(&unstuff_chunks(bytewise(&wire)), &whole);
        }

        #[test]
        fn prop_stuffed_lines_are_crlf_and_never_bare_dot(raw in input(), n in 0u64..4) {
            for wire in [retr(&raw), top(&raw, n)] {
                let body = wire.strip_suffix(b".\r\n");
                prop_assert!(body.is_some());
                let body = body.unwrap_or_default();
                prop_assert!(body.is_empty() || body.ends_with(b"\r\n"));
                for (i, &b) in body.iter().enumerate() {
                    match b {
                        b'\n' => prop_assert!(i > 0 && body[i - 1] == b'\r'),
                        b'\r' => prop_assert!(body.get(i + 1) == Some(&b'\n')),
                        _ => {}
                    }
                }
                for line in body.split(|&b| b == b'\n') {
                    prop_assert!(line != b".\r");
                }
            }
        }
    }

    #[test]
    fn unstuffer_handles_every_split_of_m2_wire() {
        // Exhaustive two-chunk splits, with trailing bytes of the next response.
        let mut wire = M2_WIRE.to_vec();
        wire.extend_from_slice(b"+OK");
        for cut in 0..=wire.len() {
            let (data, done, left) = unstuff_chunks([&wire[..cut], &wire[cut..]]);
            assert!(done, "cut {cut}");
            assert_eq!(data, M2, "cut {cut}");
            assert_eq!(left, b"+OK", "cut {cut}");
        }
    }
}
