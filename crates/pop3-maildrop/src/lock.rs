//! Locks: fcntl write locks, dotlocks with a stale-lock rule, and the in-process claim.
//!
//! Three layers, each needed for a different neighbour:
//!
//! - [`try_lock_file`]: a non-blocking fcntl (POSIX record) write lock on the whole file,
//!   as Dovecot (`mbox_write_locks = fcntl dotlock`), Postfix `local`, mutt and mpop take
//!   it. The kernel drops it when the process dies, so it can never go stale. (A
//!   `flock(2)` lock, std's `File::try_lock`, does not conflict with it on Linux.)
//! - [`DotLock`]: the file `<mbox>.lock` created with `O_CREAT|O_EXCL`, holding
//!   `<pid>:<host>\n`, as procmail, mutt, Postfix and Dovecot honour it. It survives a
//!   crash, hence the stale rule of [`DotLock::try_acquire`].
//! - The in-process claim: fcntl locks belong to a *process*, so a second session of the
//!   same daemon would be granted the lock again (and closing its descriptor would drop the
//!   first session's lock). Every store therefore records the canonical path of each open
//!   maildrop in a process-wide set and refuses a second open before touching the file.

use std::{
    collections::BTreeSet,
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    os::{
        fd::AsRawFd,
        unix::fs::{MetadataExt, OpenOptionsExt},
    },
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use rustix::{
    fs::{AtFlags, CWD, FlockOperation, Mode, OFlags},
    io::Errno,
    process::{Pid, getpid, test_kill_process},
};

/// A dotlock whose owner cannot be checked (no PID in it, or a PID of another host) is
/// broken once it has not been modified for this long: 5 minutes, as liblockfile does for
/// locks without a PID. Dovecot's `mbox_dotlock_change_timeout` is 2 minutes, Postfix's
/// `stale_lock_time` 500 seconds.
pub const STALE_AFTER: Duration = Duration::from_secs(5 * 60);

/// A lock could not be taken.
#[derive(Debug)]
#[non_exhaustive]
pub enum LockError {
    /// Someone else holds it.
    Held,
    /// The lock could not be checked or created.
    Io(io::Error),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Held => f.write_str("lock is held by someone else"),
            Self::Io(e) => write!(f, "lock: {e}"),
        }
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Held => None,
        }
    }
}

/// Takes a non-blocking fcntl write lock on the whole of `file` (which must be open for
/// writing). It is released when the last descriptor of this process on the file is
/// closed, or when the process exits.
pub fn try_lock_file(file: &File) -> Result<(), LockError> {
    match rustix::fs::fcntl_lock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(()),
        // POSIX allows either for a conflicting lock.
        Err(e) if e == Errno::AGAIN || e == Errno::ACCESS => Err(LockError::Held),
        Err(e) => Err(LockError::Io(e.into())),
    }
}

/// Dotlock paths this process holds, so that a lock file naming our own PID can be told
/// apart from one left behind by an earlier process that had the same PID.
static HELD_DOTLOCKS: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// A held dotlock: the file `<target>.lock`. Dropping it removes the file, unless someone
/// has replaced it in the meantime.
#[derive(Debug)]
pub struct DotLock {
    path: PathBuf,
    file: File,
    dev: u64,
    ino: u64,
}

/// Who wrote a dotlock, as far as its contents tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// A PID of this host (or of no stated host).
    LocalPid(i32),
    /// No PID, or a PID of another host: only the age can tell.
    Unknown,
}

fn parse_owner(contents: &[u8], our_host: &[u8]) -> Owner {
    let text = contents.trim_ascii();
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    let Some(pid) = std::str::from_utf8(&text[..digits])
        .ok()
        .and_then(|s| s.parse::<i32>().ok())
        .filter(|&p| p > 0)
    else {
        return Owner::Unknown;
    };
    match &text[digits..] {
        [] => Owner::LocalPid(pid),
        [b':', host @ ..] if host.trim_ascii() == our_host => Owner::LocalPid(pid),
        [b':', ..] => Owner::Unknown,
        // liblockfile pads with spaces; anything else after the digits is not a PID line.
        rest if rest.iter().all(u8::is_ascii_whitespace) => Owner::LocalPid(pid),
        _ => Owner::Unknown,
    }
}

/// The stale rule. `alive` answers whether a local PID names a live process; `ours`
/// whether it is this process's PID while this process does not hold the lock.
fn is_stale(
    contents: &[u8],
    age: Duration,
    our_host: &[u8],
    alive: impl Fn(i32) -> bool,
    leftover_of_ours: impl Fn(i32) -> bool,
) -> bool {
    match parse_owner(contents, our_host) {
        Owner::LocalPid(pid) if leftover_of_ours(pid) => true,
        Owner::LocalPid(pid) => !alive(pid),
        Owner::Unknown => age >= STALE_AFTER,
    }
}

fn process_alive(pid: i32) -> bool {
    let Some(pid) = Pid::from_raw(pid) else {
        return false;
    };
    // EPERM: it exists but belongs to someone else. Anything unexpected: assume alive.
    !matches!(test_kill_process(pid), Err(e) if e == Errno::SRCH)
}

fn host_name() -> Vec<u8> {
    rustix::system::uname().nodename().to_bytes().to_vec()
}

/// Creates `path` exclusively with `contents` already in it, so that a crash can never
/// leave an empty lock (which only the age rule could break). The contents go into an
/// unnamed `O_TMPFILE` inode that is then linked in; where that is not available, into the
/// temp file `.<lock name>.<pid>` beside it, hard-linked to `path` and removed (a crash
/// there leaves that temp file behind, never a lock). `AlreadyExists` if `path` exists.
fn create_with_contents(path: &Path, contents: &[u8]) -> io::Result<File> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(fd) = rustix::fs::open(
        dir,
        OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    ) {
        let mut file = File::from(fd);
        file.write_all(contents)?;
        let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
        match rustix::fs::linkat(CWD, &proc_path, CWD, path, AtFlags::SYMLINK_FOLLOW) {
            Ok(()) => return Ok(file),
            Err(e) if e == Errno::EXIST => return Err(io::ErrorKind::AlreadyExists.into()),
            // No /proc, or a file system that refuses: fall back.
            Err(_) => {}
        }
    }
    create_via_link(dir, path, contents)
}

/// The fallback of [`create_with_contents`]: a per-process temp file, hard-linked.
fn create_via_link(dir: &Path, path: &Path, contents: &[u8]) -> io::Result<File> {
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(path.file_name().unwrap_or_default());
    temp_name.push(format!(".{}", getpid().as_raw_nonzero()));
    let temp = dir.join(temp_name);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(OFlags::NOFOLLOW.bits() as i32)
        .open(&temp)?;
    let linked = file
        .write_all(contents)
        .and_then(|()| fs::hard_link(&temp, path));
    let _ = fs::remove_file(&temp);
    linked.map(|()| file)
}

impl DotLock {
    /// The dotlock path of `target`: `target` with `.lock` appended.
    pub fn path_for(target: &Path) -> PathBuf {
        let mut p = target.as_os_str().to_owned();
        p.push(".lock");
        PathBuf::from(p)
    }

    /// Creates `<target>.lock` exclusively and writes `<pid>:<host>\n` into it.
    ///
    /// An existing lock is broken (removed, then creation retried) when it is stale:
    /// - it names a PID of this host (or no host) and no such process exists;
    /// - it names this process's own PID but this process does not hold it (a leftover
    ///   of an earlier process with the same PID, common in containers);
    /// - it names no PID, or a PID of another host, and was last modified at least
    ///   [`STALE_AFTER`] ago.
    ///
    /// A lock naming a live local process is never broken, whatever its age. Otherwise the
    /// answer is [`LockError::Held`]; this never waits.
    pub fn try_acquire(target: &Path) -> Result<Self, LockError> {
        let path = Self::path_for(target);
        let host = host_name();
        let mut line = format!("{}:", getpid().as_raw_nonzero()).into_bytes();
        line.extend_from_slice(&host);
        line.push(b'\n');
        for _ in 0..4 {
            match create_with_contents(&path, &line) {
                Ok(file) => {
                    let meta = file.metadata().map_err(LockError::Io)?;
                    HELD_DOTLOCKS
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(path.clone());
                    return Ok(Self {
                        path,
                        file,
                        dev: meta.dev(),
                        ino: meta.ino(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if !Self::break_if_stale(&path, &host)? {
                        return Err(LockError::Held);
                    }
                }
                Err(e) => return Err(LockError::Io(e)),
            }
        }
        Err(LockError::Held)
    }

    /// Looks at an existing lock; removes it if stale. `Ok(true)`: try creating again.
    fn break_if_stale(path: &Path, host: &[u8]) -> Result<bool, LockError> {
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(LockError::Io(e)),
        };
        let meta = file.metadata().map_err(LockError::Io)?;
        let mut contents = Vec::with_capacity(64);
        (&mut file)
            .take(256)
            .read_to_end(&mut contents)
            .map_err(LockError::Io)?;
        let age = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .unwrap_or(Duration::ZERO);
        let me = getpid().as_raw_nonzero().get();
        let held_here = HELD_DOTLOCKS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(path);
        let stale = is_stale(&contents, age, host, process_alive, |pid| {
            pid == me && !held_here
        });
        if !stale {
            return Ok(false);
        }
        // Remove it only if it is still the file we judged.
        match fs::symlink_metadata(path) {
            Ok(now) if now.dev() == meta.dev() && now.ino() == meta.ino() => {
                match fs::remove_file(path) {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
                    Err(e) => Err(LockError::Io(e)),
                }
            }
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(LockError::Io(e)),
        }
    }

    /// Sets the lock's modification time to now, so that tools whose stale rule looks only
    /// at the age (Dovecot's 2 minutes) see it as active.
    pub fn touch(&self) -> io::Result<()> {
        self.file.set_modified(SystemTime::now())
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        HELD_DOTLOCKS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.path);
        if let Ok(now) = fs::symlink_metadata(&self.path)
            && now.dev() == self.dev
            && now.ino() == self.ino
        {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Canonical paths of the maildrops open in this process.
static CLAIMS: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// This process's claim on one maildrop; released on drop.
#[derive(Debug)]
pub(crate) struct Claim {
    key: PathBuf,
}

impl Claim {
    /// Claims `key` (a canonical path); `None` if this process already has it open.
    pub(crate) fn take(key: PathBuf) -> Option<Self> {
        let mut claims = CLAIMS.lock().unwrap_or_else(PoisonError::into_inner);
        if claims.insert(key.clone()) {
            Some(Self { key })
        } else {
            None
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        CLAIMS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &[u8] = b"here";

    fn stale(contents: &[u8], age_secs: u64) -> bool {
        is_stale(
            contents,
            Duration::from_secs(age_secs),
            HOST,
            |pid| pid == 100,
            |pid| pid == 7,
        )
    }

    #[test]
    fn owner_parsing() {
        assert_eq!(parse_owner(b"123\n", HOST), Owner::LocalPid(123));
        assert_eq!(parse_owner(b"  123  \n", HOST), Owner::LocalPid(123));
        assert_eq!(parse_owner(b"123:here\n", HOST), Owner::LocalPid(123));
        assert_eq!(parse_owner(b"123:there\n", HOST), Owner::Unknown);
        assert_eq!(parse_owner(b"", HOST), Owner::Unknown);
        assert_eq!(parse_owner(b"0\n", HOST), Owner::Unknown);
        assert_eq!(parse_owner(b"-5\n", HOST), Owner::Unknown);
        assert_eq!(parse_owner(b"99999999999\n", HOST), Owner::Unknown);
        assert_eq!(parse_owner(b"12ab\n", HOST), Owner::Unknown);
    }

    #[test]
    fn stale_rule() {
        // Live local PID: never stale, however old.
        assert!(!stale(b"100\n", 0));
        assert!(!stale(b"100:here\n", 100_000));
        // Dead local PID: stale at once.
        assert!(stale(b"101\n", 0));
        assert!(stale(b"101:here\n", 0));
        // Our own PID, not held by us: a leftover.
        assert!(stale(b"7\n", 0));
        // Unknown owner: by age only.
        for unknown in [&b""[..], b"garbage", b"100:elsewhere\n"] {
            assert!(!stale(unknown, STALE_AFTER.as_secs() - 1), "{unknown:?}");
            assert!(stale(unknown, STALE_AFTER.as_secs()), "{unknown:?}");
        }
    }

    #[test]
    fn own_process_is_alive_and_reaped_child_is_not() {
        assert!(process_alive(getpid().as_raw_nonzero().get()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        child.wait().unwrap();
        assert!(!process_alive(pid));
    }

    #[test]
    fn lock_files_are_created_with_their_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let via_tmpfile = create_with_contents(&path, b"1:h\n").unwrap();
        drop(via_tmpfile);
        assert_eq!(fs::read(&path).unwrap(), b"1:h\n");
        let err = create_with_contents(&path, b"2:h\n").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        let other = dir.path().join("y.lock");
        create_via_link(dir.path(), &other, b"3:h\n").unwrap();
        assert_eq!(fs::read(&other).unwrap(), b"3:h\n");
        let err = create_via_link(dir.path(), &other, b"4:h\n").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&other).unwrap(), b"3:h\n");
        // Only the two locks: no temp file left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn claims_are_exclusive_until_dropped() {
        let key = PathBuf::from("/nonexistent/claim-test");
        let first = Claim::take(key.clone()).unwrap();
        assert!(Claim::take(key.clone()).is_none());
        drop(first);
        assert!(Claim::take(key).is_some());
    }
}
