//! Mailbox storage for a POP3 server: Maildir, mbox and in-memory maildrops, opened with an
//! exclusive lock and changed only by an atomic, durable UPDATE.
//!
//! The server machine in [`pop3_proto::server`] never touches storage. At login the
//! application opens the user's maildrop through a [`Store`], hands
//! [`Maildrop::listing`] to [`accept_login`](pop3_proto::ServerConnection::accept_login),
//! streams [`Maildrop::open_message`] into
//! [`body_chunk`](pop3_proto::ServerConnection::body_chunk) for RETR and TOP, and at QUIT
//! passes the deleted indices of [`ServerEvent::Commit`](pop3_proto::ServerEvent::Commit) to
//! [`Maildrop::commit`]. Dropping a maildrop without committing releases it unchanged
//! (R1939-UPD-2).
//!
//! | store | on disk | lock | UPDATE |
//! |---|---|---|---|
//! | [`MaildirStore`] | Maildir (`new/` moved to `cur/` at open) | fcntl lock on `pop3.lock` in the Maildir | unlink each deleted file, fsync `cur/` |
//! | [`MboxStore`] | mboxrd (default) or mboxo | fcntl lock on the mbox **and** the dotlock `<mbox>.lock` | kept messages copied to a temp file, fsync, rename, fsync the directory |
//! | [`MemoryStore`] | nothing | a flag per user | remove from the map |
//!
//! Every store also refuses a second open of the same maildrop from the same process (fcntl
//! locks belong to a process, so they cannot tell two sessions of one daemon apart). The
//! on-disk formats, the lock protocol and the crash-safety argument are in
//! `docs/storage.md`.
//!
//! ```
//! use pop3_maildrop::{MemoryStore, OpenError, Store};
//!
//! let store = MemoryStore::new();
//! store.deliver("alice", b"Subject: hi\n\nHello\n");
//! let mut session = store.open("alice").unwrap();
//! assert_eq!(session.listing().len(), 1);
//! assert_eq!(session.listing().size(0), Some(22)); // CRLF size: what RETR sends
//! assert!(matches!(store.open("alice"), Err(OpenError::InUse)));
//!
//! let mut text = String::new();
//! std::io::Read::read_to_string(&mut session.open_message(0).unwrap(), &mut text).unwrap();
//! assert_eq!(text, "Subject: hi\n\nHello\n"); // stored bytes; the server normalises
//! session.commit(&[0]).unwrap(); // removes message 1 and releases the lock
//! assert_eq!(store.open("alice").unwrap().listing().len(), 0);
//! ```
//!
//! All I/O is synchronous `std`; an async daemon calls it from a blocking thread. Every type
//! is `Send`. Unix only (fcntl locks, `openat`).
#![forbid(unsafe_code)]

use std::io::Read;

pub use pop3_proto::Listing;

mod error;
pub mod lock;
pub mod maildir;
pub mod mbox;
pub mod memory;
mod user;

pub use error::{CommitError, MessageError, OpenError};
pub use maildir::{Maildir, MaildirOptions, MaildirStore};
pub use mbox::{Mbox, MboxFormat, MboxOptions, MboxStore};
pub use memory::{MemoryMaildrop, MemoryStore};
pub use user::{PathTemplate, is_valid_user_name};

pub mod service;

/// An open maildrop, exclusively locked for one POP3 session.
///
/// Its [`listing`](Self::listing) is fixed at open: mail delivered during the session does
/// not change numbering, sizes or ids (R1939-LOCK-3). Dropping it releases the lock and
/// changes nothing; [`commit`](Self::commit) is the only way anything is removed.
pub trait Maildrop: Send + std::fmt::Debug {
    /// Sizes (on-the-wire CRLF octets, exactly what RETR sends) and unique ids, in message
    /// order; message `n` of the session is index `n - 1`.
    fn listing(&self) -> &Listing;

    /// A reader over the stored bytes of message `index` (0-based), for
    /// [`body_chunk`](pop3_proto::ServerConnection::body_chunk). Line ends are as stored
    /// (the server machine normalises them); mbox quoting is already removed. The message
    /// is streamed, never read into memory whole.
    fn open_message(&mut self, index: usize) -> Result<Box<dyn Read + Send + '_>, MessageError>;

    /// UPDATE: removes the messages at `deleted` (0-based, any order, duplicates ignored)
    /// durably, then releases the maildrop. `Ok` means every one of them is gone and stays
    /// gone after a crash or power loss; on `Err` some of them may remain, but no other
    /// message was touched (R1939-UPD-3).
    fn commit(self: Box<Self>, deleted: &[usize]) -> Result<(), CommitError>;
}

/// Where users' maildrops live. Shared by all sessions of a daemon (`Send + Sync`).
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Opens and exclusively locks `user`'s maildrop. A maildrop already open (in this
    /// process or another) gives [`OpenError::InUse`].
    fn open(&self, user: &str) -> Result<Box<dyn Maildrop>, OpenError>;
}
