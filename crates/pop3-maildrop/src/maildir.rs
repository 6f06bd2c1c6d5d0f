//! Maildir, as Postfix, Dovecot, qmail and Courier write it.
//!
//! - **Open.** Take the lock (fcntl on `pop3.lock` in the Maildir's root), move every file
//!   of `new/` to `cur/` with `:2,` appended, then list `cur/`. Names starting with `.` are
//!   not mail; neither is anything in `tmp/` or the root (`pop3.lock`, `pop3-sizes`).
//! - **Unique id.** The base name (the file name before the first `:`) when it is a valid
//!   RFC 1939 id (1–70 characters in 0x21–0x7E), as Dovecot's `pop3_uidl_format = %f`
//!   does; otherwise the 32 hex digits of the MD5 of the base name. Both survive the move
//!   to `cur/` and flag changes, so ids are stable across sessions.
//! - **Size.** Dovecot's `,W=<n>` in the name (its CRLF size) when present, else computed
//!   with [`pop3_proto::dot::WireSize`] and remembered in the size cache `pop3-sizes`.
//! - **Order.** Delivery time from the name (`<seconds>.` and the `M<microseconds>` of the
//!   unique part), then base name, then file name: stable across sessions.
//! - **Commit.** `unlink` each deleted file, then fsync `cur/`.
//!
//! Files that vanish during a session give [`MessageError::Gone`] for that message only; a
//! file renamed by another program (flags changed by an IMAP server) is found again by its
//! base name.

mod cache;

use std::{
    ffi::{OsStr, OsString},
    fs::{self, File, OpenOptions},
    io::{self, Read},
    os::unix::{
        ffi::OsStrExt,
        fs::{DirEntryExt, OpenOptionsExt},
    },
    path::{Path, PathBuf},
};

use md5::{Digest, Md5};
use pop3_proto::{Listing, dot::WireSize, maildrop::is_valid_uid};
use rustix::{
    fd::OwnedFd,
    fs::{AtFlags, Mode, OFlags},
    io::Errno,
};

use crate::{
    CommitError, Maildrop, MessageError, OpenError, PathTemplate, Store,
    error::checked_deleted,
    lock::{Claim, LockError, try_lock_file},
};

/// The lock file in the Maildir's root: its fcntl lock is the session lock.
pub const LOCK_FILE: &str = "pop3.lock";
/// The size cache in the Maildir's root.
pub const SIZE_CACHE_FILE: &str = cache::FILE;

/// How a Maildir is read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MaildirOptions {
    /// Take the size from Dovecot's `,W=<n>` in the file name without reading the file
    /// (default `true`). Dovecot counts each bare LF as two octets, as we do, but it counts
    /// a bare CR as one and adds nothing for a missing final line end, where RETR sends
    /// CRLF; turn this off to have every size computed (and cached) from the bytes.
    pub trust_w_size: bool,
    /// Keep computed sizes in `pop3-sizes` (default `true`).
    pub size_cache: bool,
}

impl Default for MaildirOptions {
    fn default() -> Self {
        Self {
            trust_w_size: true,
            size_cache: true,
        }
    }
}

/// Users' Maildirs, found through a [`PathTemplate`].
#[derive(Debug, Clone)]
pub struct MaildirStore {
    template: PathTemplate,
    options: MaildirOptions,
}

impl MaildirStore {
    /// A store with default options; `template` gives each user's Maildir directory (the
    /// one holding `cur/`, `new/`, `tmp/`).
    pub fn new(template: PathTemplate) -> Self {
        Self {
            template,
            options: MaildirOptions::default(),
        }
    }

    /// Replaces the options.
    #[must_use]
    pub fn with_options(mut self, options: MaildirOptions) -> Self {
        self.options = options;
        self
    }

    /// Opens the Maildir at `dir` directly (no user name involved).
    pub fn open_path(&self, dir: &Path) -> Result<Maildir, OpenError> {
        Maildir::open(dir, &self.options)
    }
}

impl Store for MaildirStore {
    fn open(&self, user: &str) -> Result<Box<dyn Maildrop>, OpenError> {
        let dir = self.template.resolve(user)?;
        Ok(Box::new(self.open_path(&dir)?))
    }
}

/// A file of the Maildir that is not served this session, and why.
#[derive(Debug)]
#[non_exhaustive]
pub struct Skipped {
    /// The file name (in `cur/`, or in `new/` when it could not be moved).
    pub name: OsString,
    /// What went wrong.
    pub error: io::Error,
}

/// One message: its current file name in `cur/`.
#[derive(Debug)]
struct Entry {
    name: OsString,
}

impl Entry {
    fn base(&self) -> &[u8] {
        base_name(self.name.as_bytes())
    }
}

/// An open, locked Maildir.
#[derive(Debug)]
pub struct Maildir {
    dir: PathBuf,
    cur: OwnedFd,
    messages: Vec<Entry>,
    listing: Listing,
    skipped: Vec<Skipped>,
    // Dropped in this order: the fcntl lock (by closing the file), then the claim.
    _lock: File,
    _claim: Claim,
}

/// The base name: the file name before the first `:` (the Maildir info separator).
fn base_name(name: &[u8]) -> &[u8] {
    match memchr::memchr(b':', name) {
        Some(p) => &name[..p],
        None => name,
    }
}

/// Dovecot's `,W=<n>` field of a base name.
fn w_size(base: &[u8]) -> Option<u64> {
    base.split(|&b| b == b',')
        .skip(1)
        .find_map(|field| field.strip_prefix(b"W="))
        .filter(|d| !d.is_empty() && d.iter().all(u8::is_ascii_digit))
        .and_then(|d| std::str::from_utf8(d).ok()?.parse().ok())
}

/// Delivery time from a name `<seconds>.<unique>.<host>`: the seconds and the
/// microseconds of an `M<digits>` in the unique part. Names without a time sort last.
fn delivery_time(base: &[u8]) -> (u64, u64) {
    let mut parts = base.split(|&b| b == b'.');
    let secs = parts
        .next()
        .filter(|d| !d.is_empty() && d.len() <= 19 && d.iter().all(u8::is_ascii_digit))
        .and_then(|d| std::str::from_utf8(d).ok()?.parse().ok());
    let Some(secs) = secs else {
        return (u64::MAX, 0);
    };
    let usec = parts
        .next()
        .and_then(|unique| {
            let at = memchr::memchr(b'M', unique)?;
            let digits = &unique[at + 1..];
            let n = digits
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
                .min(6);
            std::str::from_utf8(&digits[..n]).ok()?.parse().ok()
        })
        .unwrap_or(0);
    (secs, usec)
}

/// 32 lowercase hex digits of the MD5 of `parts`, concatenated.
pub(crate) fn md5_hex(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    hex(&h.finalize())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn is_dir(path: &Path) -> Result<bool, OpenError> {
    match fs::metadata(path) {
        Ok(m) => Ok(m.is_dir()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(OpenError::io(path, e)),
    }
}

/// Opens a message file in `cur/` without following a symlink.
fn open_in(cur: &OwnedFd, name: &OsStr) -> io::Result<File> {
    let fd = rustix::fs::openat(
        cur,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// The wire size of a whole file.
fn compute_size(mut file: File, buf: &mut [u8]) -> io::Result<u64> {
    let mut size = WireSize::new();
    loop {
        match file.read(buf) {
            Ok(0) => return Ok(size.finish()),
            Ok(n) => size.feed(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn is_hidden(name: &OsStr) -> bool {
    name.as_bytes().first() == Some(&b'.')
}

/// A file found in `cur/` with what sorting and sizing need.
struct Found {
    name: OsString,
    base_len: usize,
    time: (u64, u64),
    size: u64,
}

impl Found {
    fn base(&self) -> &[u8] {
        &self.name.as_bytes()[..self.base_len]
    }
}

impl Maildir {
    fn open(dir: &Path, options: &MaildirOptions) -> Result<Self, OpenError> {
        let canonical = match fs::canonicalize(dir) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(OpenError::NotFound),
            Err(e) => return Err(OpenError::io(dir, e)),
        };
        let claim = Claim::take(canonical.clone()).ok_or(OpenError::InUse)?;
        let dir = canonical;
        let cur_path = dir.join("cur");
        let new_path = dir.join("new");
        if !is_dir(&dir)? {
            return Err(OpenError::corrupt(&dir, "not a directory"));
        }
        if !is_dir(&cur_path)? || !is_dir(&new_path)? {
            return Err(OpenError::corrupt(
                &dir,
                "not a Maildir (no cur/ or no new/)",
            ));
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(OFlags::NOFOLLOW.bits() as i32)
            .open(&lock_path)
            .map_err(|e| OpenError::io(&lock_path, e))?;
        match try_lock_file(&lock) {
            Ok(()) => {}
            Err(LockError::Held) => return Err(OpenError::InUse),
            Err(LockError::Io(e)) => return Err(OpenError::io(&lock_path, e)),
        }
        let cur = open_dir(&cur_path).map_err(|e| OpenError::io(&cur_path, e))?;
        let mut skipped = Vec::new();
        move_new(&new_path, &cur, &mut skipped)?;
        let found = scan_cur(&dir, &cur_path, &cur, options, &mut skipped)?;
        let (messages, listing) = build_listing(found);
        Ok(Self {
            dir,
            cur,
            messages,
            listing,
            skipped,
            _lock: lock,
            _claim: claim,
        })
    }

    /// Files not served this session (unreadable, symlinks, directories, or stuck in
    /// `new/`), for the daemon to log. Every other message is served.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The Maildir's directory (canonical).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The current file name in `cur/` of message `index`.
    pub fn file_name(&self, index: usize) -> Option<&OsStr> {
        self.messages.get(index).map(|e| e.name.as_os_str())
    }

    /// After `ENOENT`: looks for the message under another name with the same base name
    /// (another program changed its flags). Updates and returns the name if found.
    fn relocate(&mut self, index: usize) -> io::Result<Option<OsString>> {
        let Some(entry) = self.messages.get(index) else {
            return Ok(None);
        };
        let base = entry.base().to_vec();
        for item in fs::read_dir(self.dir.join("cur"))? {
            let name = item?.file_name();
            if !is_hidden(&name) && base_name(name.as_bytes()) == base.as_slice() {
                if let Some(e) = self.messages.get_mut(index) {
                    e.name.clone_from(&name);
                }
                return Ok(Some(name));
            }
        }
        Ok(None)
    }

    /// Removes message `index`'s file; `Ok` also when it is already gone.
    fn unlink(&mut self, index: usize) -> io::Result<()> {
        let Some(entry) = self.messages.get(index) else {
            return Ok(());
        };
        match rustix::fs::unlinkat(&self.cur, &entry.name, AtFlags::empty()) {
            Ok(()) => Ok(()),
            Err(e) if e == Errno::NOENT => match self.relocate(index)? {
                Some(name) => match rustix::fs::unlinkat(&self.cur, &name, AtFlags::empty()) {
                    Err(e) if e != Errno::NOENT => Err(e.into()),
                    _ => Ok(()),
                },
                None => Ok(()),
            },
            Err(e) => Err(e.into()),
        }
    }
}

/// Moves `new/*` to `cur/*:2,`, then fsyncs both directories if anything moved.
fn move_new(new_path: &Path, cur: &OwnedFd, skipped: &mut Vec<Skipped>) -> Result<(), OpenError> {
    let new = open_dir(new_path).map_err(|e| OpenError::io(new_path, e))?;
    let entries = fs::read_dir(new_path).map_err(|e| OpenError::io(new_path, e))?;
    let mut moved = false;
    for item in entries {
        let item = item.map_err(|e| OpenError::io(new_path, e))?;
        let name = item.file_name();
        if is_hidden(&name) {
            continue;
        }
        let mut target = name.clone();
        if !name.as_bytes().contains(&b':') {
            target.push(":2,");
        }
        match rustix::fs::statat(cur, &target, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => {
                skipped.push(Skipped {
                    name,
                    error: io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "a file of that name is already in cur/; left in new/",
                    ),
                });
                continue;
            }
            Err(e) if e == Errno::NOENT => {}
            Err(e) => return Err(OpenError::io(new_path, e.into())),
        }
        match rustix::fs::renameat(&new, &name, cur, &target) {
            Ok(()) => moved = true,
            // Moved or removed by someone else meanwhile.
            Err(e) if e == Errno::NOENT => {}
            Err(e) => skipped.push(Skipped {
                name,
                error: e.into(),
            }),
        }
    }
    if moved {
        // Durable before anything is deleted from cur/: otherwise a power loss after a
        // commit could bring a deleted message back in new/.
        rustix::fs::fsync(cur).map_err(|e| OpenError::io(new_path, e.into()))?;
        rustix::fs::fsync(&new).map_err(|e| OpenError::io(new_path, e.into()))?;
    }
    Ok(())
}

/// Lists `cur/` and sizes every message.
fn scan_cur(
    dir: &Path,
    cur_path: &Path,
    cur: &OwnedFd,
    options: &MaildirOptions,
    skipped: &mut Vec<Skipped>,
) -> Result<Vec<Found>, OpenError> {
    let io_err = |e| OpenError::io(cur_path, e);
    let mut found = Vec::new();
    // Messages whose size needs the cache or the file: (index into `found`, inode).
    let mut to_size = Vec::new();
    for item in fs::read_dir(cur_path).map_err(io_err)? {
        let item = item.map_err(io_err)?;
        let name = item.file_name();
        if is_hidden(&name) {
            continue;
        }
        match item.file_type() {
            Ok(t) if t.is_file() => {}
            Ok(t) => {
                let what = if t.is_symlink() {
                    "a symlink"
                } else {
                    "not a regular file"
                };
                skipped.push(Skipped {
                    name,
                    error: io::Error::new(io::ErrorKind::InvalidInput, what),
                });
                continue;
            }
            // Vanished since the listing.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => {
                skipped.push(Skipped { name, error });
                continue;
            }
        }
        let base = base_name(name.as_bytes());
        let base_len = base.len();
        let time = delivery_time(base);
        let size = if options.trust_w_size {
            w_size(base)
        } else {
            None
        };
        if size.is_none() {
            to_size.push((found.len(), item.ino()));
        }
        found.push(Found {
            name,
            base_len,
            time,
            size: size.unwrap_or(0),
        });
    }
    if to_size.is_empty() {
        return Ok(found);
    }

    let mut cache_bytes = Vec::new();
    if options.size_cache {
        cache::read(dir, &mut cache_bytes);
    }
    let cached = cache::Loaded::parse(&cache_bytes);
    let mut hits = 0usize;
    let mut computed = 0usize;
    let mut gone = vec![false; found.len()];
    let mut buf = vec![0u8; 64 * 1024];
    for &(i, ino) in &to_size {
        let Some(f) = found.get_mut(i) else { continue };
        if let Some(size) = cached.get(f.base(), ino) {
            f.size = size;
            hits += 1;
            continue;
        }
        match open_in(cur, &f.name).and_then(|file| compute_size(file, &mut buf)) {
            Ok(size) => {
                f.size = size;
                computed += 1;
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    skipped.push(Skipped {
                        name: f.name.clone(),
                        error: e,
                    });
                }
                gone[i] = true;
            }
        }
    }
    if options.size_cache && (computed > 0 || hits != cached.len()) {
        let entries = to_size.iter().filter_map(|&(i, ino)| {
            let f = found.get(i)?;
            (!gone[i]).then(|| (f.base(), ino, f.size))
        });
        // Only a cache: a Maildir we cannot write to still works, sizes are recomputed.
        let _ = cache::write(dir, entries);
    }
    drop(cached);
    let mut i = 0;
    found.retain(|_| {
        i += 1;
        !gone[i - 1]
    });
    Ok(found)
}

/// Sorts, assigns unique ids and builds the listing.
fn build_listing(mut found: Vec<Found>) -> (Vec<Entry>, Listing) {
    found.sort_unstable_by(|a, b| {
        (a.time, a.base(), a.name.as_bytes()).cmp(&(b.time, b.base(), b.name.as_bytes()))
    });
    let mut listing = Listing::with_capacity(found.len());
    let mut messages: Vec<Entry> = Vec::with_capacity(found.len());
    for f in found {
        let derived;
        let base = f.base();
        let same_base_as_previous = messages.last().is_some_and(|prev| prev.base() == base);
        let uid: &[u8] = if same_base_as_previous {
            // The same base name twice (a copy left by a crashed flag change): the later
            // one gets an id derived from its whole file name.
            derived = md5_hex(&[b"dup\0", f.name.as_bytes()]);
            derived.as_bytes()
        } else if is_valid_uid(base) {
            base
        } else {
            derived = md5_hex(&[base]);
            derived.as_bytes()
        };
        if listing.push(f.size, uid).is_ok() {
            messages.push(Entry { name: f.name });
        }
    }
    (messages, listing)
}

impl Maildrop for Maildir {
    fn listing(&self) -> &Listing {
        &self.listing
    }

    fn open_message(&mut self, index: usize) -> Result<Box<dyn Read + Send + '_>, MessageError> {
        let Some(entry) = self.messages.get(index) else {
            return Err(MessageError::NoSuchMessage { index });
        };
        let io_err = |source| MessageError::Io { index, source };
        match open_in(&self.cur, &entry.name) {
            Ok(file) => Ok(Box::new(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let Some(name) = self.relocate(index).map_err(io_err)? else {
                    return Err(MessageError::Gone { index });
                };
                match open_in(&self.cur, &name) {
                    Ok(file) => Ok(Box::new(file)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        Err(MessageError::Gone { index })
                    }
                    Err(e) => Err(io_err(e)),
                }
            }
            Err(e) => Err(io_err(e)),
        }
    }

    fn commit(mut self: Box<Self>, deleted: &[usize]) -> Result<(), CommitError> {
        let deleted = checked_deleted(deleted, self.messages.len())?;
        if deleted.is_empty() {
            return Ok(());
        }
        let mut not_removed = Vec::new();
        let mut first_error = None;
        for &index in &deleted {
            if let Err(e) = self.unlink(index) {
                not_removed.push(index);
                first_error.get_or_insert(e);
            }
        }
        if let Err(e) = rustix::fs::fsync(&self.cur) {
            // Nothing is known to be durable.
            return Err(CommitError::Storage {
                not_removed: deleted,
                source: e.into(),
            });
        }
        match first_error {
            None => Ok(()),
            Some(source) => Err(CommitError::Storage {
                not_removed,
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names() {
        assert_eq!(base_name(b"1.2.h:2,S"), b"1.2.h");
        assert_eq!(base_name(b"1.2.h"), b"1.2.h");
        assert_eq!(base_name(b"a:b:c"), b"a");
    }

    #[test]
    fn w_sizes() {
        assert_eq!(w_size(b"1.M2P3.h,S=100,W=103"), Some(103));
        assert_eq!(w_size(b"1.M2P3.h,W=7,S=5"), Some(7));
        assert_eq!(w_size(b"1.M2P3.h,S=100"), None);
        assert_eq!(w_size(b"W=5.h"), None);
        assert_eq!(w_size(b"1.h,W="), None);
        assert_eq!(w_size(b"1.h,W=1x"), None);
        assert_eq!(w_size(b"1.h,W=99999999999999999999999"), None);
    }

    #[test]
    fn delivery_times() {
        assert_eq!(
            delivery_time(b"1700000000.Vfd01I2c4M123456.host"),
            (1_700_000_000, 123_456)
        );
        assert_eq!(
            delivery_time(b"1700000001.M5P1234.host,S=1,W=2"),
            (1_700_000_001, 5)
        );
        assert_eq!(delivery_time(b"1700000002.12345.host"), (1_700_000_002, 0));
        assert_eq!(delivery_time(b"msg-without-time"), (u64::MAX, 0));
        assert_eq!(delivery_time(b""), (u64::MAX, 0));
    }

    #[test]
    fn order_and_ids() {
        let found = |name: &str, size| Found {
            name: OsString::from(name),
            base_len: base_name(name.as_bytes()).len(),
            time: delivery_time(base_name(name.as_bytes())),
            size,
        };
        let long = format!("5.{}.h", "x".repeat(80));
        let (messages, listing) = build_listing(vec![
            found("3.M2.h:2,", 3),
            found("no-time:2,", 9),
            found("3.M10.h:2,S", 4),
            found("1.a b.h:2,", 1),
            found(&format!("{long}:2,"), 5),
            found("2.dup.h:2,", 2),
            found("2.dup.h:2,S", 22),
        ]);
        let names: Vec<_> = messages.iter().map(|e| e.name.to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "1.a b.h:2,",
                "2.dup.h:2,",
                "2.dup.h:2,S",
                "3.M2.h:2,",
                "3.M10.h:2,S",
                &format!("{long}:2,"),
                "no-time:2,"
            ]
        );
        let uid = |i| std::str::from_utf8(listing.uid(i).unwrap()).unwrap();
        // Invalid base names: MD5 hex of the base name.
        assert_eq!(uid(0), md5_hex(&[b"1.a b.h"]));
        assert_eq!(uid(0).len(), 32);
        assert_eq!(uid(5), md5_hex(&[long.as_bytes()]));
        // Valid: the base name itself.
        assert_eq!(uid(1), "2.dup.h");
        assert_eq!(uid(2), md5_hex(&[b"dup\0", b"2.dup.h:2,S"]));
        assert_eq!(uid(3), "3.M2.h");
        assert_eq!(uid(6), "no-time");
        assert_eq!(listing.size(2), Some(22));
    }

    #[test]
    fn md5_hex_known_value() {
        assert_eq!(md5_hex(&[b"abc"]), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(md5_hex(&[b"a", b"bc"]), md5_hex(&[b"abc"]));
    }
}
