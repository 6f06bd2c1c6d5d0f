//! An in-memory store, for tests and the demo server: users → messages, exclusive per user,
//! with an injectable commit failure for UPDATE tests (R1939-UPD-3).

use std::{
    collections::HashMap,
    io::Read,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{SystemTime, UNIX_EPOCH},
};

use pop3_proto::{Listing, dot::wire_size, maildrop::is_valid_uid};

use crate::{CommitError, Maildrop, MessageError, OpenError, Store, error::checked_deleted};

#[derive(Debug, Clone)]
struct Message {
    uid: String,
    bytes: Arc<[u8]>,
}

#[derive(Debug, Default)]
struct Mailbox {
    messages: Vec<Message>,
    locked: bool,
    /// Fail the next commit after this many removals.
    fail_commit_after: Option<usize>,
}

#[derive(Debug)]
struct State {
    users: HashMap<String, Mailbox>,
    /// Ids are `<epoch>.<n>`: never reused within a store, nor (by the epoch) across runs.
    epoch: u64,
    next: u64,
}

/// Maildrops kept in memory. Cloning gives another handle on the same store.
///
/// ```
/// use pop3_maildrop::{MemoryStore, Store};
/// let store = MemoryStore::demo("demo");
/// let drop = store.open("demo").unwrap();
/// assert_eq!(drop.listing().len(), 3);
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            state: Arc::new(Mutex::new(State {
                users: HashMap::new(),
                epoch,
                next: 1,
            })),
        }
    }

    /// A store where `user` has three sample messages (one with a line starting with a dot,
    /// one without a final line end).
    pub fn demo(user: &str) -> Self {
        let store = Self::new();
        store.deliver(
            user,
            b"From: Demo <demo@example.invalid>\nTo: you\nSubject: Welcome\n\nThis maildrop lives in memory.\nNothing you delete here is lost for long.\n",
        );
        store.deliver(
            user,
            b"From: Demo <demo@example.invalid>\nSubject: Dots\n\nThe next line starts with a dot:\n.like this\n.\nand the server stuffs it.\n",
        );
        store.deliver(
            user,
            b"From: Demo <demo@example.invalid>\nSubject: No final newline\n\nRETR still ends with CRLF.",
        );
        store
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates `user` with an empty maildrop (no-op if present).
    pub fn add_user(&self, user: &str) {
        self.lock().users.entry(user.to_owned()).or_default();
    }

    /// Appends a message to `user`'s maildrop (creating the user); returns its unique id.
    /// A session already open does not see it (R1939-LOCK-3).
    pub fn deliver(&self, user: &str, bytes: &[u8]) -> String {
        let mut state = self.lock();
        let uid = format!("{}.{}", state.epoch, state.next);
        state.next += 1;
        state
            .users
            .entry(user.to_owned())
            .or_default()
            .messages
            .push(Message {
                uid: uid.clone(),
                bytes: bytes.into(),
            });
        uid
    }

    /// Appends a message with a chosen unique id; `false` if the id is not valid (RFC 1939
    /// §7) or already used in that maildrop.
    pub fn deliver_with_uid(&self, user: &str, uid: &str, bytes: &[u8]) -> bool {
        let mut state = self.lock();
        let mailbox = state.users.entry(user.to_owned()).or_default();
        if !is_valid_uid(uid.as_bytes()) || mailbox.messages.iter().any(|m| m.uid == uid) {
            return false;
        }
        mailbox.messages.push(Message {
            uid: uid.to_owned(),
            bytes: bytes.into(),
        });
        true
    }

    /// `user`'s messages as (unique id, bytes), or `None` for an unknown user.
    pub fn messages(&self, user: &str) -> Option<Vec<(String, Vec<u8>)>> {
        self.lock().users.get(user).map(|m| {
            m.messages
                .iter()
                .map(|m| (m.uid.clone(), m.bytes.to_vec()))
                .collect()
        })
    }

    /// Whether a session has `user`'s maildrop open.
    pub fn is_locked(&self, user: &str) -> bool {
        self.lock().users.get(user).is_some_and(|m| m.locked)
    }

    /// Makes the next commit of `user` fail after removing `removed` messages, as a storage
    /// fault part-way through UPDATE would.
    pub fn fail_next_commit_after(&self, user: &str, removed: usize) {
        self.lock()
            .users
            .entry(user.to_owned())
            .or_default()
            .fail_commit_after = Some(removed);
    }
}

impl Store for MemoryStore {
    fn open(&self, user: &str) -> Result<Box<dyn Maildrop>, OpenError> {
        let mut state = self.lock();
        let mailbox = state.users.get_mut(user).ok_or(OpenError::NotFound)?;
        if mailbox.locked {
            return Err(OpenError::InUse);
        }
        let mut listing = Listing::with_capacity(mailbox.messages.len());
        for m in &mailbox.messages {
            listing
                .push(wire_size(&m.bytes), m.uid.as_bytes())
                .map_err(|_| OpenError::corrupt(user, "invalid unique id"))?;
        }
        mailbox.locked = true;
        Ok(Box::new(MemoryMaildrop {
            store: self.clone(),
            user: user.to_owned(),
            messages: mailbox.messages.clone(),
            listing,
        }))
    }
}

/// A session's view of a [`MemoryStore`] maildrop.
#[derive(Debug)]
pub struct MemoryMaildrop {
    store: MemoryStore,
    user: String,
    messages: Vec<Message>,
    listing: Listing,
}

impl Maildrop for MemoryMaildrop {
    fn listing(&self) -> &Listing {
        &self.listing
    }

    fn open_message(&mut self, index: usize) -> Result<Box<dyn Read + Send + '_>, MessageError> {
        let m = self
            .messages
            .get(index)
            .ok_or(MessageError::NoSuchMessage { index })?;
        Ok(Box::new(&m.bytes[..]))
    }

    fn commit(self: Box<Self>, deleted: &[usize]) -> Result<(), CommitError> {
        let deleted = checked_deleted(deleted, self.messages.len())?;
        let mut state = self.store.lock();
        let Some(mailbox) = state.users.get_mut(&self.user) else {
            return Ok(());
        };
        let fail_after = mailbox.fail_commit_after.take();
        for (n, &index) in deleted.iter().enumerate() {
            if fail_after == Some(n) {
                return Err(CommitError::Storage {
                    not_removed: deleted[n..].to_vec(),
                    source: std::io::Error::other("injected storage fault"),
                });
            }
            if let Some(m) = self.messages.get(index) {
                mailbox.messages.retain(|x| x.uid != m.uid);
            }
        }
        Ok(())
    }
}

impl Drop for MemoryMaildrop {
    fn drop(&mut self) {
        if let Some(m) = self.store.lock().users.get_mut(&self.user) {
            m.locked = false;
        }
    }
}
