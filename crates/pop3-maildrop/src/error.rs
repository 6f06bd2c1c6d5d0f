//! Typed errors of opening, reading and committing a maildrop, with the `-ERR` each one
//! maps to in [`pop3_proto::server`].

use std::{fmt, io, path::PathBuf};

use pop3_proto::server::{CommitOutcome, LoginRejection, Unavailable};

/// Why a maildrop could not be opened. No lock is held after any of these (R1939-ST-5).
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// Another session (this process or another program) holds the maildrop.
    InUse,
    /// The user has no maildrop (no Maildir directory, no mbox file). A daemon may serve
    /// an empty maildrop instead.
    NotFound,
    /// The user name cannot name a maildrop: empty, too long, or containing `/`, NUL or a
    /// control character, or starting with `.` (it is never put into a path).
    InvalidUser,
    /// The maildrop exists but is not in a format this store reads (an mbox that does not
    /// start with `From `, a Maildir without `cur/` or `new/`).
    Corrupt {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O error.
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl OpenError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The rejection the server machine answers with: `[IN-USE]` for
    /// [`InUse`](Self::InUse), `[SYS/PERM]` for a missing, corrupt or unnameable maildrop
    /// (R1939-ST-4), `[SYS/TEMP]` for an I/O error.
    pub fn login_rejection(&self) -> LoginRejection {
        match self {
            Self::InUse => LoginRejection::InUse,
            Self::NotFound | Self::InvalidUser | Self::Corrupt { .. } => {
                LoginRejection::PermanentFailure
            }
            Self::Io { .. } => LoginRejection::TemporaryFailure,
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InUse => f.write_str("maildrop is in use by another session"),
            Self::NotFound => f.write_str("no maildrop for this user"),
            Self::InvalidUser => f.write_str("user name cannot name a maildrop"),
            Self::Corrupt { path, reason } => {
                write!(f, "{}: not a valid maildrop: {reason}", path.display())
            }
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why one message cannot be read. The other messages are not affected.
#[derive(Debug)]
#[non_exhaustive]
pub enum MessageError {
    /// The index is not in the listing.
    NoSuchMessage {
        /// The 0-based index asked for.
        index: usize,
    },
    /// The message was removed from storage by someone else during the session.
    Gone {
        /// The 0-based index.
        index: usize,
    },
    /// An I/O error opening the message.
    Io {
        /// The 0-based index.
        index: usize,
        /// The error.
        source: io::Error,
    },
}

impl MessageError {
    /// What the server machine answers: [`Unavailable::Gone`] (`-ERR [SYS/TEMP]`) for a
    /// vanished message, [`Unavailable::StorageError`] otherwise.
    pub fn unavailable(&self) -> Unavailable {
        match self {
            Self::Gone { .. } => Unavailable::Gone,
            Self::NoSuchMessage { .. } | Self::Io { .. } => Unavailable::StorageError,
        }
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchMessage { index } => write!(f, "no message at index {index}"),
            Self::Gone { index } => write!(f, "message at index {index} was removed from storage"),
            Self::Io { index, source } => write!(f, "message at index {index}: {source}"),
        }
    }
}

impl std::error::Error for MessageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why UPDATE did not complete. Messages not marked deleted are never touched; the lock is
/// released all the same.
#[derive(Debug)]
#[non_exhaustive]
pub enum CommitError {
    /// An index is not in the listing; nothing was removed.
    NoSuchMessage {
        /// The offending 0-based index.
        index: usize,
    },
    /// Storage failed part-way. `not_removed` lists the marked messages that may still be
    /// present (ascending); the others are gone.
    Storage {
        /// Marked messages that may not have been removed.
        not_removed: Vec<usize>,
        /// The first error.
        source: io::Error,
    },
}

impl CommitError {
    /// What the server machine answers (`-ERR [SYS/TEMP] some deleted messages not
    /// removed`, RFC 1939 §6).
    pub fn outcome(&self) -> CommitOutcome {
        CommitOutcome::Failed
    }

    /// The [`CommitOutcome`] of a commit result, for
    /// [`commit_done`](pop3_proto::ServerConnection::commit_done).
    pub fn outcome_of(result: &Result<(), Self>) -> CommitOutcome {
        match result {
            Ok(()) => CommitOutcome::Committed,
            Err(e) => e.outcome(),
        }
    }
}

impl fmt::Display for CommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchMessage { index } => {
                write!(f, "no message at index {index}; nothing removed")
            }
            Self::Storage {
                not_removed,
                source,
            } => write!(
                f,
                "{} deleted message(s) may not have been removed: {source}",
                not_removed.len()
            ),
        }
    }
}

impl std::error::Error for CommitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Storage { source, .. } => Some(source),
            Self::NoSuchMessage { .. } => None,
        }
    }
}

/// Sorts and deduplicates deleted indices, checking each against `len`.
pub(crate) fn checked_deleted(deleted: &[usize], len: usize) -> Result<Vec<usize>, CommitError> {
    let mut v = deleted.to_vec();
    v.sort_unstable();
    v.dedup();
    match v.last() {
        Some(&index) if index >= len => Err(CommitError::NoSuchMessage { index }),
        _ => Ok(v),
    }
}
