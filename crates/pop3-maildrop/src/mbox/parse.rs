//! Streaming mbox parsing: `From ` separators, `>From` unquoting, sizes and ids in one pass.
//!
//! **Separators.** A line starting with `From ` is a separator when it is the first line of
//! the file or follows an empty line (`\n` or `\r\n`). A `From ` line elsewhere is body text:
//! a writer that failed to quote it did not mean a new message, and taking it as one would
//! split a message (Dovecot likewise only starts a message after the blank line that ends
//! the previous one). The empty line before a separator, and one empty line at the end of
//! the file, belong to the mbox framing, not to the message.
//!
//! **Unquoting.** mboxrd: a line matching `^>+From ` loses one `>`. mboxo: only `^>From `
//! loses its `>` (so `>>From ` stays, the known ambiguity of mboxo).
//!
//! Everything is chunk-invariant and bounded: lines of any length, runs of any number of
//! `>`, are processed with fixed buffers.

use std::io::{self, Read};

use md5::{Digest, Md5};
use pop3_proto::{Listing, dot::WireSize};

use super::MboxFormat;

const FROM: &[u8; 5] = b"From ";

/// Where [`Unquoter`] is within the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the first byte of a line.
    LineStart,
    /// Held back: `gts` leading `>` and then `from` bytes of `From `.
    Prefix { gts: u64, from: u8 },
    /// Writing out held bytes: `gts` more `>`, then `FROM[done..from]`.
    Flush { gts: u64, from: u8, done: u8 },
    /// Inside a line: bytes pass through until the line feed.
    Mid,
}

/// Removes mbox `From ` quoting from a stream, pull style: bounded output per call.
#[derive(Debug, Clone)]
pub(crate) struct Unquoter {
    format: MboxFormat,
    state: State,
}

impl Unquoter {
    pub(crate) fn new(format: MboxFormat) -> Self {
        Self {
            format,
            state: State::LineStart,
        }
    }

    /// Converts from `input` into `out`; returns (bytes consumed, bytes written). With
    /// non-empty `input` and `out`, at least one of them is non-zero.
    pub(crate) fn convert(&mut self, input: &[u8], out: &mut [u8]) -> (usize, usize) {
        let (mut i, mut o) = (0usize, 0usize);
        loop {
            match self.state {
                State::Flush { gts, from, done } => {
                    let room = out.len() - o;
                    if room == 0 {
                        return (i, o);
                    }
                    if gts > 0 {
                        let n = usize::try_from(gts).unwrap_or(usize::MAX).min(room);
                        out[o..o + n].fill(b'>');
                        o += n;
                        self.state = State::Flush {
                            gts: gts - n as u64,
                            from,
                            done,
                        };
                    } else if done < from {
                        let n = usize::from(from - done).min(room);
                        let d = usize::from(done);
                        out[o..o + n].copy_from_slice(&FROM[d..d + n]);
                        o += n;
                        self.state = State::Flush {
                            gts,
                            from,
                            done: done + n as u8,
                        };
                    } else {
                        self.state = State::Mid;
                    }
                }
                _ if i == input.len() => return (i, o),
                State::LineStart => {
                    if input[i] == b'>' {
                        self.state = State::Prefix { gts: 1, from: 0 };
                        i += 1;
                    } else {
                        self.state = State::Mid;
                    }
                }
                State::Prefix { gts, from } => {
                    let b = input[i];
                    if from == 0 && b == b'>' && self.format == MboxFormat::Mboxrd {
                        self.state = State::Prefix { gts: gts + 1, from };
                        i += 1;
                    } else if b == FROM[usize::from(from)] {
                        i += 1;
                        self.state = if from + 1 == 5 {
                            // A quoted separator: one `>` less.
                            State::Flush {
                                gts: gts - 1,
                                from: 5,
                                done: 0,
                            }
                        } else {
                            State::Prefix {
                                gts,
                                from: from + 1,
                            }
                        };
                    } else {
                        // Not a quoted `From `: give the held bytes back unchanged; `b` is
                        // handled after them.
                        self.state = State::Flush { gts, from, done: 0 };
                    }
                }
                State::Mid => {
                    let room = out.len() - o;
                    if room == 0 {
                        return (i, o);
                    }
                    let take = (input.len() - i).min(room);
                    let chunk = &input[i..i + take];
                    let n = match memchr::memchr(b'\n', chunk) {
                        Some(p) => {
                            self.state = State::LineStart;
                            p + 1
                        }
                        None => take,
                    };
                    out[o..o + n].copy_from_slice(&chunk[..n]);
                    i += n;
                    o += n;
                }
            }
        }
    }

    /// At the end of the input: writes out anything held back. Call until it returns 0.
    pub(crate) fn finish(&mut self, out: &mut [u8]) -> usize {
        if let State::Prefix { gts, from } = self.state {
            self.state = State::Flush { gts, from, done: 0 };
        }
        self.convert(&[], out).1
    }
}

/// One message's place in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// Start of its `From ` line.
    pub(crate) start: u64,
    /// Start of the message (after the `From ` line).
    pub(crate) content_start: u64,
    /// End of the message (before the framing empty line, if any).
    pub(crate) content_end: u64,
    /// Start of the next `From ` line, or the end of the parsed file.
    pub(crate) end: u64,
}

/// A parsed mbox.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) spans: Vec<Span>,
    pub(crate) listing: Listing,
    /// Bytes parsed (the file's length at open).
    pub(crate) len: u64,
    /// How often each hash has been seen, to tell identical copies apart.
    seen: std::collections::HashMap<[u8; 16], u32>,
}

/// Why parsing failed.
#[derive(Debug)]
pub(crate) enum ParseError {
    Io(io::Error),
    Corrupt(&'static str),
}

/// The message being parsed.
struct Current {
    start: u64,
    content_start: Option<u64>,
    size: WireSize,
    hash: Md5,
    unquote: Unquoter,
    /// When the last line seen is empty: where it starts, and size and hash before it.
    before_empty: Option<(u64, WireSize, Md5)>,
}

impl Current {
    fn new(start: u64, format: MboxFormat) -> Self {
        Self {
            start,
            content_start: None,
            size: WireSize::new(),
            hash: Md5::new(),
            unquote: Unquoter::new(format),
            before_empty: None,
        }
    }

    fn feed(&mut self, mut raw: &[u8], tmp: &mut [u8]) {
        while !raw.is_empty() {
            let (c, w) = self.unquote.convert(raw, tmp);
            self.size.feed(&tmp[..w]);
            raw = &raw[c..];
        }
    }
}

impl Parsed {
    fn finish(&mut self, mut c: Current, end: u64, tmp: &mut [u8]) {
        let content_start = c.content_start.unwrap_or(end);
        let (content_end, size, hash) = match c.before_empty {
            Some((at, size, hash)) => (at, size, hash),
            None => {
                loop {
                    let w = c.unquote.finish(tmp);
                    if w == 0 {
                        break;
                    }
                    c.size.feed(&tmp[..w]);
                }
                (end, c.size, c.hash)
            }
        };
        let digest: [u8; 16] = hash.finalize().into();
        let copies = self.seen.entry(digest).or_insert(0);
        *copies += 1;
        let mut uid = crate::maildir::hex(&digest);
        if *copies > 1 {
            // Identical messages (same `From ` line too): told apart by their order.
            uid.push_str(&format!("-{copies}"));
        }
        // A 32-digit hex id, possibly with a short suffix: always valid.
        let _ = self.listing.push(size.finish(), uid.as_bytes());
        self.spans.push(Span {
            start: c.start,
            content_start,
            content_end,
            end,
        });
    }
}

/// Reads a whole mbox: where each message is, its wire size (after unquoting) and its id
/// (MD5 of its `From ` line and stored bytes).
pub(crate) fn parse(mut reader: impl Read, format: MboxFormat) -> Result<Parsed, ParseError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut tmp = vec![0u8; 64 * 1024];
    let mut have = 0usize;
    let mut base = 0u64;
    let mut eof = false;
    let mut at_line_start = true;
    let mut in_from_line = false;
    let mut cur: Option<Current> = None;
    let mut out = Parsed::default();
    while !eof {
        match reader.read(&mut buf[have..]) {
            Ok(0) => eof = true,
            Ok(n) => have += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ParseError::Io(e)),
        }
        let data = &buf[..have];
        let mut i = 0;
        while i < data.len() {
            let rest = &data[i..];
            if at_line_start {
                // `From ` needs five bytes of lookahead.
                if rest.len() < FROM.len() && !eof {
                    break;
                }
                let pos = base + i as u64;
                let after_empty = cur.as_ref().is_some_and(|c| c.before_empty.is_some());
                if rest.starts_with(FROM) && (pos == 0 || after_empty) {
                    if let Some(c) = cur.take() {
                        out.finish(c, pos, &mut tmp);
                    }
                    cur = Some(Current::new(pos, format));
                    in_from_line = true;
                } else {
                    let Some(c) = cur.as_mut() else {
                        return Err(ParseError::Corrupt("does not start with a \"From \" line"));
                    };
                    let empty = rest.first() == Some(&b'\n') || rest.starts_with(b"\r\n");
                    c.before_empty = empty.then(|| (pos, c.size.clone(), c.hash.clone()));
                }
            }
            let (len, complete) = match memchr::memchr(b'\n', rest) {
                Some(p) => (p + 1, true),
                None => (rest.len(), false),
            };
            let piece = &rest[..len];
            if let Some(c) = cur.as_mut() {
                c.hash.update(piece);
                if in_from_line {
                    if complete {
                        in_from_line = false;
                        c.content_start = Some(base + (i + len) as u64);
                    }
                } else {
                    c.feed(piece, &mut tmp);
                }
            }
            i += len;
            at_line_start = complete;
        }
        buf.copy_within(i..have, 0);
        have -= i;
        base += i as u64;
    }
    if let Some(c) = cur {
        out.finish(c, base, &mut tmp);
    }
    out.len = base;
    out.seen = Default::default();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pop3_proto::dot::wire_size;

    fn unquote_with(format: MboxFormat, input: &[u8], in_step: usize, out_len: usize) -> Vec<u8> {
        let mut u = Unquoter::new(format);
        let mut out = vec![0u8; out_len];
        let mut result = Vec::new();
        for chunk in input.chunks(in_step.max(1)) {
            let mut rest = chunk;
            while !rest.is_empty() {
                let (c, w) = u.convert(rest, &mut out);
                assert!(c + w > 0, "no progress");
                result.extend_from_slice(&out[..w]);
                rest = &rest[c..];
            }
        }
        loop {
            let w = u.finish(&mut out);
            if w == 0 {
                break;
            }
            result.extend_from_slice(&out[..w]);
        }
        result
    }

    fn unquote(format: MboxFormat, input: &[u8]) -> Vec<u8> {
        let whole = unquote_with(format, input, input.len(), 64 * 1024);
        for step in [1, 2, 3, 7] {
            for out_len in [1, 2, 5, 64] {
                assert_eq!(
                    unquote_with(format, input, step, out_len),
                    whole,
                    "step {step}, out {out_len}"
                );
            }
        }
        whole
    }

    #[test]
    fn mboxrd_unquoting() {
        let rd = |s: &[u8]| unquote(MboxFormat::Mboxrd, s);
        assert_eq!(rd(b">From x\n"), b"From x\n");
        assert_eq!(rd(b">>From x\n>>>From y\n"), b">From x\n>>From y\n");
        assert_eq!(rd(b"a >From x\n"), b"a >From x\n");
        assert_eq!(rd(b">Fro\n>From\n> From x\n"), b">Fro\n>From\n> From x\n");
        assert_eq!(rd(b">>Frob\n"), b">>Frob\n");
        assert_eq!(rd(b">>>"), b">>>");
        assert_eq!(rd(b">>Fr"), b">>Fr");
        assert_eq!(rd(b"From x\n"), b"From x\n");
        assert_eq!(rd(b">From "), b"From ");
        assert_eq!(rd(b"x\r\n>From y\r\n"), b"x\r\nFrom y\r\n");
        assert_eq!(rd(b""), b"");
        let many = [&b">".repeat(1000)[..], b"From z\n"].concat();
        assert_eq!(rd(&many), [&b">".repeat(999)[..], b"From z\n"].concat());
    }

    #[test]
    fn mboxo_unquoting() {
        let o = |s: &[u8]| unquote(MboxFormat::Mboxo, s);
        assert_eq!(o(b">From x\n"), b"From x\n");
        assert_eq!(o(b">>From x\n"), b">>From x\n");
        assert_eq!(o(b">Frog\n"), b">Frog\n");
        assert_eq!(o(b">"), b">");
    }

    /// A reader that hands out at most `step` bytes a call.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Parses `mbox` whole and trickled; returns the unquoted message bytes.
    fn messages(mbox: &[u8], format: MboxFormat) -> Vec<Vec<u8>> {
        let parsed = parse(mbox, format).unwrap();
        for step in [1, 2, 4, 5, 6, 13] {
            let p = parse(Trickle { data: mbox, step }, format).unwrap();
            assert_eq!(p.spans, parsed.spans, "step {step}");
            assert_eq!(p.listing, parsed.listing, "step {step}");
        }
        assert_eq!(parsed.len, mbox.len() as u64);
        let mut prev_end = 0;
        parsed
            .spans
            .iter()
            .enumerate()
            .map(|(i, s)| {
                assert_eq!(s.start, prev_end);
                prev_end = s.end;
                let raw = &mbox[s.content_start as usize..s.content_end as usize];
                let body = unquote(format, raw);
                assert_eq!(
                    parsed.listing.size(i),
                    Some(wire_size(&body)),
                    "message {i}"
                );
                body
            })
            .collect()
    }

    #[test]
    fn separators_and_framing() {
        let mbox = b"From a@b Mon Jan  1 00:00:00 2024\nSubject: 1\n\nbody\n>From quoted\nFrom not a separator\n\nFrom c@d Tue Jan  2 00:00:00 2024\nSubject: 2\n\n\n\nFrom e@f Wed Jan  3 00:00:00 2024\nSubject: 3\n\nlast\n\n";
        let m = messages(mbox, MboxFormat::Mboxrd);
        assert_eq!(
            m,
            [
                &b"Subject: 1\n\nbody\nFrom quoted\nFrom not a separator\n"[..],
                b"Subject: 2\n\n\n",
                b"Subject: 3\n\nlast\n",
            ]
        );
    }

    #[test]
    fn odd_endings() {
        // No final newline, no blank line between messages is not a separator.
        assert_eq!(
            messages(b"From a\nx\nFrom b\ny", MboxFormat::Mboxrd),
            [&b"x\nFrom b\ny"[..]]
        );
        // A From line alone, with and without newline.
        assert_eq!(messages(b"From a", MboxFormat::Mboxrd), [&b""[..]]);
        assert_eq!(messages(b"From a\n", MboxFormat::Mboxrd), [&b""[..]]);
        assert_eq!(
            messages(b"From a\n\nFrom b\n", MboxFormat::Mboxrd),
            [&b""[..], b""]
        );
        // CRLF mbox.
        assert_eq!(
            messages(
                b"From a\r\nS: 1\r\n\r\nb\r\n\r\nFrom b\r\nS: 2\r\n\r\n",
                MboxFormat::Mboxrd
            ),
            [&b"S: 1\r\n\r\nb\r\n"[..], b"S: 2\r\n"]
        );
        // Quoted separator-like line at the end, without newline.
        assert_eq!(
            messages(b"From a\n\n>>From x", MboxFormat::Mboxrd),
            [&b"\n>From x"[..]]
        );
        assert_eq!(
            messages(b"From a\n\n>>From x", MboxFormat::Mboxo),
            [&b"\n>>From x"[..]]
        );
        // Empty file: no messages.
        assert_eq!(messages(b"", MboxFormat::Mboxrd), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn corrupt() {
        for bad in [&b"\n"[..], b" From a\n", b"Subject: x\n\nFrom a\n", b"From"] {
            assert!(
                matches!(parse(bad, MboxFormat::Mboxrd), Err(ParseError::Corrupt(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ids_are_content_hashes_and_copies_differ() {
        let one = b"From a\nx\n\n";
        let p = parse(
            &[&one[..], one, b"From a\ny\n"].concat()[..],
            MboxFormat::Mboxrd,
        )
        .unwrap();
        let uid = |i| {
            std::str::from_utf8(p.listing.uid(i).unwrap())
                .unwrap()
                .to_owned()
        };
        assert_eq!(uid(0), crate::maildir::md5_hex(&[b"From a\nx\n"]));
        assert_eq!(uid(1), format!("{}-2", uid(0)));
        assert_ne!(uid(2), uid(0));
        // The id does not depend on what follows.
        let alone = parse(&one[..], MboxFormat::Mboxrd).unwrap();
        assert_eq!(alone.listing.uid(0), p.listing.uid(0));
    }
}
