//! Fixtures shared by the `pop3-proto` benchmarks (`benches/codec.rs`, `benches/session.rs`).
//!
//! Everything here is deterministic: the same call returns the same bytes on every run, so
//! figures from different runs measure the same work.
#![forbid(unsafe_code)]

use pop3_proto::Listing;

/// Chunk size in which stored mail is fed to the codecs, as an adapter reading a file would.
pub const CHUNK: usize = 64 * 1024;

/// Words for the text lines; plain ASCII as most mail bodies are.
const WORDS: &[&str] = &[
    "the",
    "message",
    "server",
    "client",
    "mailbox",
    "retrieve",
    "protocol",
    "of",
    "and",
    "delete",
    "a",
    "to",
    "is",
    "on",
    "with",
    "octets",
    "session",
    "quit",
    "list",
    "we",
    "meeting",
    "tomorrow",
    "attached",
    "please",
    "find",
    "report",
    "quarterly",
    "numbers",
    "thanks",
    "regards",
    "you",
    "for",
    "in",
    "that",
    "it",
    "be",
    "this",
    "will",
];

/// Lines that start with `.`, as they turn up in real mail (signatures, ellipses, dotted
/// paths, quoted-printable soft breaks around a dot).
const DOT_LINES: &[&str] = &[
    ".",
    "...",
    ".signature follows",
    "..and a line that already starts with two dots",
    ". end of quoted section",
    ".profile and .bashrc were changed",
];

/// A small deterministic generator (xorshift64*); no dependency, no global state.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        // The modulo bias is irrelevant for fixtures.
        (self.next() % n as u64) as usize
    }
}

/// A realistic stored message of exactly `len` octets (for `len >= 1024`) with CRLF line ends:
/// a header block, text paragraphs with quoted replies and blank lines, about one line in
/// forty starting with `.`, and a base64 attachment of 76-character lines making up roughly
/// the second half.
pub fn mail(len: usize) -> Vec<u8> {
    let mut rng = Rng(0x5EED_F00D_CAFE_0001);
    let mut m = Vec::with_capacity(len);
    for header in [
        "Return-Path: <alice@example.org>",
        "Received: from mx.example.org (mx.example.org [192.0.2.25])",
        "\tby pop.example.com with ESMTPS id 4Xb9; Tue, 3 Nov 2026 10:00:00 +0000",
        "Message-ID: <20261103100000.4242@example.org>",
        "Date: Tue, 3 Nov 2026 10:00:00 +0000",
        "From: Alice <alice@example.org>",
        "To: Bob <bob@example.com>",
        "Subject: Quarterly numbers, as promised",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=\"b1\"",
        "",
        "--b1",
        "Content-Type: text/plain; charset=us-ascii",
        "",
    ] {
        m.extend_from_slice(header.as_bytes());
        m.extend_from_slice(b"\r\n");
    }
    // Leave room for the filler line that makes the length exact.
    let text_end = len / 2;
    let body_end = len.saturating_sub(200);
    while m.len() < text_end {
        match rng.below(40) {
            0 => m.extend_from_slice(DOT_LINES[rng.below(DOT_LINES.len())].as_bytes()),
            1..=3 => {}
            4..=9 => {
                m.extend_from_slice(b"> ");
                push_words(&mut m, &mut rng, 60);
            }
            _ => {
                let width = 40 + rng.below(37);
                push_words(&mut m, &mut rng, width);
            }
        }
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(
        b"\r\n--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    );
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    while m.len() < body_end {
        for _ in 0..76 {
            m.push(B64[rng.below(64)]);
        }
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b"\r\n--b1--\r\n");
    // A last line of filler brings the message to exactly `len` octets.
    if let Some(fill) = len.checked_sub(m.len() + 2) {
        m.resize(m.len() + fill, b'=');
        m.extend_from_slice(b"\r\n");
    }
    m
}

fn push_words(m: &mut Vec<u8>, rng: &mut Rng, width: usize) {
    let start = m.len();
    while m.len() - start < width {
        if m.len() > start {
            m.push(b' ');
        }
        m.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
    }
}

/// The same message stored with bare LF line ends (as Maildir and mbox files usually are).
pub fn bare_lf(crlf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(crlf.len());
    let mut rest = crlf;
    while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
        out.extend_from_slice(&rest[..i]);
        out.push(b'\n');
        rest = &rest[i + 2..];
    }
    out.extend_from_slice(rest);
    out
}

/// A listing of `count` messages of `size` octets each, with 24-character unique ids.
pub fn listing(count: usize, size: u64) -> Listing {
    let mut l = Listing::with_capacity(count);
    for i in 0..count {
        let uid = format!("{:08x}{:016x}", 0x6543_2100_u32, i);
        l.push(size, uid.as_bytes())
            .expect("hex digits are a valid unique id");
    }
    l
}
