//! The size cache `pop3-sizes`: wire sizes of messages without `,W=`, so a Maildir is read
//! in full only once.
//!
//! Text, one message a line, keyed by base name and checked against the file's inode
//! number:
//!
//! ```text
//! pop3-maildrop size cache v1
//! <wire size> <inode> <base name>
//! ...
//! end <number of entries>
//! ```
//!
//! The inode number comes with the directory listing, so a warm open needs no `stat` at
//! all. Maildir message files are immutable (an edit writes a new file under a new name),
//! and a replaced file has a new inode; only a file rewritten in place, which no Maildir
//! writer does, would keep a stale size.
//!
//! The base name is last so it may hold spaces; names holding a line feed are not cached.
//! A file without the header or without a matching `end` line (truncated, garbage) is
//! ignored as a whole. It is rewritten (temp file + rename, like everything here) only when
//! an entry was added or one is no longer used.

use std::{
    collections::HashMap,
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::Path,
};

/// The cache file, in the Maildir's root (never in `cur/`, `new/` or `tmp/`).
pub(crate) const FILE: &str = "pop3-sizes";
/// Where a new cache is written before the rename.
pub(crate) const TEMP: &str = "pop3-sizes.tmp";
const HEADER: &[u8] = b"pop3-maildrop size cache v1\n";
/// A cache bigger than this is ignored rather than read (about 4 million messages).
const MAX_LEN: u64 = 256 * 1024 * 1024;

/// What identifies one version of a message file: its inode number.
pub(crate) type Stamp = u64;

/// A cache as read: base name → (stamp, wire size), borrowing the file's bytes.
#[derive(Debug, Default)]
pub(crate) struct Loaded<'a> {
    entries: HashMap<&'a [u8], (Stamp, u64)>,
}

impl<'a> Loaded<'a> {
    /// Parses a cache file's bytes; anything malformed gives an empty cache.
    pub(crate) fn parse(bytes: &'a [u8]) -> Self {
        Self::try_parse(bytes).unwrap_or_default()
    }

    fn try_parse(bytes: &'a [u8]) -> Option<Self> {
        let body = bytes.strip_prefix(HEADER)?;
        let body = body.strip_suffix(b"\n")?;
        let (lines, last) = match memchr::memrchr(b'\n', body) {
            Some(p) => (&body[..p], &body[p + 1..]),
            None => (&b""[..], body),
        };
        let count: usize = parse_num(last.strip_prefix(b"end ")?)?;
        // The count is untrusted: bound the allocation by what the text can hold.
        let mut entries = HashMap::with_capacity(count.min(lines.len() / 10 + 1));
        if count > 0 {
            for line in lines.split(|&b| b == b'\n') {
                let mut fields = line.splitn(3, |&b| b == b' ');
                let wire = parse_num(fields.next()?)?;
                let stamp = parse_num(fields.next()?)?;
                let base = fields.next().filter(|b| !b.is_empty())?;
                entries.insert(base, (stamp, wire));
            }
        } else if !lines.is_empty() {
            return None;
        }
        (entries.len() == count).then_some(Self { entries })
    }

    /// The cached wire size of `base`, if its stamp still matches.
    pub(crate) fn get(&self, base: &[u8], stamp: Stamp) -> Option<u64> {
        match self.entries.get(base) {
            Some(&(s, wire)) if s == stamp => Some(wire),
            _ => None,
        }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

fn parse_num<T: std::str::FromStr>(field: &[u8]) -> Option<T> {
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// Reads `dir/pop3-sizes` into `buf` (empty when missing, unreadable or too big).
pub(crate) fn read(dir: &Path, buf: &mut Vec<u8>) {
    buf.clear();
    let Ok(file) = File::open(dir.join(FILE)) else {
        return;
    };
    if file.metadata().map_or(true, |m| m.len() > MAX_LEN) {
        return;
    }
    if file.take(MAX_LEN).read_to_end(buf).is_err() {
        buf.clear();
    }
}

/// Writes a new cache: to `pop3-sizes.tmp`, fsync, rename over `pop3-sizes`.
pub(crate) fn write<'e>(
    dir: &Path,
    entries: impl Iterator<Item = (&'e [u8], Stamp, u64)>,
) -> io::Result<()> {
    let mut text = Vec::with_capacity(64 * 1024);
    text.extend_from_slice(HEADER);
    let mut count = 0usize;
    for (base, stamp, wire) in entries {
        if base.is_empty() || base.contains(&b'\n') {
            continue;
        }
        text.extend_from_slice(format!("{wire} {stamp} ").as_bytes());
        text.extend_from_slice(base);
        text.push(b'\n');
        count += 1;
    }
    text.extend_from_slice(format!("end {count}\n").as_bytes());
    let temp = dir.join(TEMP);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)?;
    file.write_all(&text)?;
    file.sync_data()?;
    drop(file);
    fs::rename(&temp, dir.join(FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(ino: u64) -> Stamp {
        1000 + ino
    }

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let names: [&[u8]; 3] = [b"1.a.host", b"2.b host with spaces", b"3.c"];
        write(
            dir.path(),
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (*n, stamp(i as u64), 100 + i as u64))
                .chain(std::iter::once((&b"bad\nname"[..], stamp(9), 9))),
        )
        .unwrap();
        let mut buf = Vec::new();
        read(dir.path(), &mut buf);
        let loaded = Loaded::parse(&buf);
        assert_eq!(loaded.len(), 3);
        assert_eq!(loaded.get(b"2.b host with spaces", stamp(1)), Some(101));
        assert_eq!(loaded.get(b"2.b host with spaces", stamp(2)), None);
        assert_eq!(loaded.get(b"bad\nname", stamp(9)), None);
        assert!(!dir.path().join(TEMP).exists());

        // Truncated anywhere: ignored as a whole.
        for cut in 0..buf.len() {
            assert_eq!(Loaded::parse(&buf[..cut]).len(), 0, "cut at {cut}");
        }
        // A count that does not match.
        let mut wrong = buf.clone();
        let at = wrong.len() - 2;
        wrong[at] = b'4';
        assert_eq!(Loaded::parse(&wrong).len(), 0);
        // Garbage in a number.
        let text = String::from_utf8(buf.clone())
            .unwrap()
            .replacen("\n100 ", "\n1x0 ", 1);
        assert_ne!(text.as_bytes(), buf);
        assert_eq!(Loaded::parse(text.as_bytes()).len(), 0);
        // Empty cache.
        write(dir.path(), std::iter::empty()).unwrap();
        read(dir.path(), &mut buf);
        assert_eq!(buf, b"pop3-maildrop size cache v1\nend 0\n");
        assert_eq!(Loaded::try_parse(&buf).unwrap().len(), 0);
    }
}
