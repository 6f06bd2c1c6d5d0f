//! mbox spool files (`/var/mail/<user>`): mboxrd by default, mboxo selectable.
//!
//! - **Open.** Take the fcntl write lock on the mbox (non-blocking), check the path still
//!   names the locked file, take the dotlock `<mbox>.lock` (see [`DotLock`]), remove a temp
//!   file left by a crashed commit, then read the file once: message offsets, wire sizes of
//!   the unquoted bytes, ids. A file that does not start with `From ` is
//!   [`OpenError::Corrupt`]; an empty file is an empty maildrop.
//! - **Separators.** A line starting with `From ` is a separator when it is the first line
//!   of the file or follows an empty line (`\n` or `\r\n`). Elsewhere it is body text (a
//!   writer that failed to quote it did not mean a new message). The empty line before a
//!   separator, and one empty line at the end of the file, are mbox framing, not message.
//!   `Content-Length:` (mboxcl) is not used.
//! - **Unique id.** 32 hex digits of the MD5 of the message's `From ` line and stored
//!   bytes; a second identical copy gets `-2`, and so on. Commits copy messages byte for
//!   byte, so ids are stable across sessions.
//! - **Read.** The stored bytes of one message with `>From ` quoting removed, streamed.
//! - **Commit.** Copy the kept messages (original bytes, quoting and framing preserved) into
//!   `.<name>.pop3-tmp` in the same directory, with the mbox's owner and mode; fsync it;
//!   rename it over the mbox; fsync the directory. The locks are released after that.

mod parse;

use std::{
    fs::{self, File, OpenOptions, Permissions},
    io::{self, Read, Write},
    os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use pop3_proto::Listing;
use rustix::fs::OFlags;

use crate::{
    CommitError, Maildrop, MessageError, OpenError, PathTemplate, Store,
    error::checked_deleted,
    lock::{Claim, DotLock, LockError, try_lock_file},
};
use parse::{ParseError, Span, Unquoter};

/// How `From ` lines inside messages are quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MboxFormat {
    /// Lines matching `^>*From ` were written with one more `>`; reading removes one from
    /// `^>+From `. Reversible; what mutt, mpop and Dovecot write.
    #[default]
    Mboxrd,
    /// Lines matching `^From ` were written as `>From `; reading removes the `>` of
    /// `^>From ` only.
    Mboxo,
}

/// How an mbox is read and locked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MboxOptions {
    /// The quoting convention (default [`MboxFormat::Mboxrd`]).
    pub format: MboxFormat,
    /// Take the dotlock `<mbox>.lock` besides the fcntl lock (default `true`). Needs write
    /// access to the mbox's directory; turn it off only where no program relies on
    /// dotlocks.
    pub dotlock: bool,
}

impl Default for MboxOptions {
    fn default() -> Self {
        Self {
            format: MboxFormat::Mboxrd,
            dotlock: true,
        }
    }
}

/// Users' mbox files, found through a [`PathTemplate`] (typically
/// `PathTemplate::under("/var/mail")`).
#[derive(Debug, Clone)]
pub struct MboxStore {
    template: PathTemplate,
    options: MboxOptions,
}

impl MboxStore {
    /// A store with default options.
    pub fn new(template: PathTemplate) -> Self {
        Self {
            template,
            options: MboxOptions::default(),
        }
    }

    /// Replaces the options.
    #[must_use]
    pub fn with_options(mut self, options: MboxOptions) -> Self {
        self.options = options;
        self
    }

    /// Opens the mbox at `path` directly (no user name involved).
    pub fn open_path(&self, path: &Path) -> Result<Mbox, OpenError> {
        Mbox::open(path, &self.options)
    }
}

impl Store for MboxStore {
    fn open(&self, user: &str) -> Result<Box<dyn Maildrop>, OpenError> {
        let path = self.template.resolve(user)?;
        Ok(Box::new(self.open_path(&path)?))
    }
}

/// An open, locked mbox.
#[derive(Debug)]
pub struct Mbox {
    path: PathBuf,
    spans: Vec<Span>,
    listing: Listing,
    parsed_len: u64,
    format: MboxFormat,
    // Released in this order: the dotlock, the fcntl lock (closing the file), the claim.
    dotlock: Option<DotLock>,
    file: File,
    _claim: Claim,
}

/// The temp file of a commit: `.<name>.pop3-tmp` beside the mbox. It starts with `.`, so
/// no user name maps to it.
pub fn temp_path(mbox: &Path) -> PathBuf {
    let name = mbox.file_name().unwrap_or_default();
    let mut temp = std::ffi::OsString::from(".");
    temp.push(name);
    temp.push(".pop3-tmp");
    mbox.with_file_name(temp)
}

impl Mbox {
    fn open(path: &Path, options: &MboxOptions) -> Result<Self, OpenError> {
        let canonical = match fs::canonicalize(path) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(OpenError::NotFound),
            Err(e) => return Err(OpenError::io(path, e)),
        };
        let claim = Claim::take(canonical.clone()).ok_or(OpenError::InUse)?;
        let path = canonical;
        let file = lock_current(&path)?;
        let dotlock = if options.dotlock {
            match DotLock::try_acquire(&path) {
                Ok(l) => Some(l),
                Err(LockError::Held) => return Err(OpenError::InUse),
                Err(LockError::Io(e)) => return Err(OpenError::io(DotLock::path_for(&path), e)),
            }
        } else {
            None
        };
        // A commit that crashed before its rename left this; we hold the locks now.
        let temp = temp_path(&path);
        match fs::remove_file(&temp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(OpenError::io(&temp, e));
            }
            _ => {}
        }
        let parsed = match parse::parse(ReadAt::new(&file), options.format) {
            Ok(p) => p,
            Err(ParseError::Io(e)) => return Err(OpenError::io(&path, e)),
            Err(ParseError::Corrupt(why)) => return Err(OpenError::corrupt(&path, why)),
        };
        Ok(Self {
            path,
            spans: parsed.spans,
            listing: parsed.listing,
            parsed_len: parsed.len,
            format: options.format,
            dotlock,
            file,
            _claim: claim,
        })
    }

    /// The mbox's path (canonical).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the kept messages to the temp file and renames it over the mbox.
    fn rewrite(&self, deleted: &[usize]) -> io::Result<()> {
        let meta = self.file.metadata()?;
        if meta.len() < self.parsed_len {
            return Err(io::Error::other(
                "the mbox shrank during the session although it was locked; not rewritten",
            ));
        }
        let temp_path = temp_path(&self.path);
        let result = self.write_temp(&temp_path, &meta, deleted);
        if result.is_err() {
            let _ = fs::remove_file(&temp_path);
            return result;
        }
        fs::rename(&temp_path, &self.path)
    }

    fn write_temp(
        &self,
        temp_path: &Path,
        meta: &fs::Metadata,
        deleted: &[usize],
    ) -> io::Result<()> {
        let mut temp = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(OFlags::NOFOLLOW.bits() as i32)
            .open(temp_path)?;
        let temp_meta = temp.metadata()?;
        if temp_meta.uid() != meta.uid() || temp_meta.gid() != meta.gid() {
            std::os::unix::fs::fchown(&temp, Some(meta.uid()), Some(meta.gid()))?;
        }
        temp.set_permissions(Permissions::from_mode(meta.mode() & 0o7777))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut deleted = deleted.iter().peekable();
        for (i, span) in self.spans.iter().enumerate() {
            if deleted.next_if_eq(&&i).is_some() {
                continue;
            }
            copy_range(&self.file, span.start, span.end, &mut temp, &mut buf)?;
        }
        // Bytes appended by a writer that ignored the locks are kept too.
        copy_range(&self.file, self.parsed_len, meta.len(), &mut temp, &mut buf)?;
        temp.sync_all()
    }
}

/// Opens `path` read-write and takes the fcntl lock, retrying if the path was replaced (by
/// another commit's rename) between the open and the lock.
fn lock_current(path: &Path) -> Result<File, OpenError> {
    for _ in 0..5 {
        match fs::metadata(path) {
            Ok(m) if !m.is_file() => return Err(OpenError::corrupt(path, "not a regular file")),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(OpenError::NotFound),
            Err(e) => return Err(OpenError::io(path, e)),
        }
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(OpenError::NotFound),
            Err(e) => return Err(OpenError::io(path, e)),
        };
        let meta = file.metadata().map_err(|e| OpenError::io(path, e))?;
        if !meta.is_file() {
            return Err(OpenError::corrupt(path, "not a regular file"));
        }
        match try_lock_file(&file) {
            Ok(()) => {}
            Err(LockError::Held) => return Err(OpenError::InUse),
            Err(LockError::Io(e)) => return Err(OpenError::io(path, e)),
        }
        match fs::metadata(path) {
            Ok(now) if now.dev() == meta.dev() && now.ino() == meta.ino() => return Ok(file),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(OpenError::io(path, e)),
        }
    }
    Err(OpenError::InUse)
}

/// Copies `file[from..to]` to `out`.
fn copy_range(file: &File, from: u64, to: u64, out: &mut File, buf: &mut [u8]) -> io::Result<()> {
    let mut pos = from;
    while pos < to {
        let want = usize::try_from(to - pos)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = match file.read_at(&mut buf[..want], pos) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
        pos += n as u64;
    }
    Ok(())
}

/// `Read` over a file by position, leaving the file offset alone.
#[derive(Debug)]
struct ReadAt<'a> {
    file: &'a File,
    pos: u64,
}

impl<'a> ReadAt<'a> {
    fn new(file: &'a File) -> Self {
        Self { file, pos: 0 }
    }
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// One message's unquoted bytes, streamed from the file.
struct MessageReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    unquote: Unquoter,
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl Read for MessageReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.start == self.len && self.pos < self.end {
                let want = usize::try_from(self.end - self.pos)
                    .unwrap_or(usize::MAX)
                    .min(self.buf.len());
                let n = self.file.read_at(&mut self.buf[..want], self.pos)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the mbox shrank during the session",
                    ));
                }
                self.pos += n as u64;
                self.start = 0;
                self.len = n;
            }
            if self.start == self.len {
                return Ok(self.unquote.finish(out));
            }
            let (c, w) = self.unquote.convert(&self.buf[self.start..self.len], out);
            self.start += c;
            if w > 0 {
                return Ok(w);
            }
        }
    }
}

impl Maildrop for Mbox {
    fn listing(&self) -> &Listing {
        &self.listing
    }

    fn open_message(&mut self, index: usize) -> Result<Box<dyn Read + Send + '_>, MessageError> {
        let Some(span) = self.spans.get(index) else {
            return Err(MessageError::NoSuchMessage { index });
        };
        if let Some(lock) = &self.dotlock {
            // Keeps age-only stale rules of other programs away; failure is harmless.
            let _ = lock.touch();
        }
        Ok(Box::new(MessageReader {
            file: &self.file,
            pos: span.content_start,
            end: span.content_end,
            unquote: Unquoter::new(self.format),
            buf: vec![0u8; 64 * 1024],
            start: 0,
            len: 0,
        }))
    }

    fn commit(self: Box<Self>, deleted: &[usize]) -> Result<(), CommitError> {
        let deleted = checked_deleted(deleted, self.spans.len())?;
        if deleted.is_empty() {
            return Ok(());
        }
        if let Some(lock) = &self.dotlock {
            let _ = lock.touch();
        }
        if let Err(source) = self.rewrite(&deleted) {
            return Err(CommitError::Storage {
                not_removed: deleted,
                source,
            });
        }
        // The rename is done; make it durable.
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        match File::open(dir).and_then(|d| d.sync_all()) {
            Ok(()) => Ok(()),
            Err(source) => Err(CommitError::Storage {
                not_removed: deleted,
                source,
            }),
        }
    }
}
