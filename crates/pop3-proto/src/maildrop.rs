//! [`Listing`]: what the server state machine knows about a maildrop.

use alloc::vec::Vec;
use core::fmt;

/// The maildrop as the application hands it over at login: for each message, in maildrop
/// order, its size on the wire and its unique id (RFC 1939 §4, §7).
///
/// The size is the number of octets RETR delivers with CRLF line ends, before dot-stuffing
/// (R1939-LIST-6); [`crate::dot::wire_size`] computes it from stored bytes. Ids are stored
/// back to back in one buffer, so a 100,000-message listing costs three allocations.
///
/// ```
/// use pop3_proto::Listing;
/// let mut l = Listing::new();
/// l.push(58, b"0000000100000001").unwrap();
/// assert!(l.push(10, b"has space").is_err()); // R1939-UIDL-3
/// assert_eq!((l.len(), l.size(0), l.uid(0)), (1, Some(58), Some(&b"0000000100000001"[..])));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    sizes: Vec<u64>,
    uid_ends: Vec<u32>,
    uids: Vec<u8>,
}

/// A unique id that breaks RFC 1939 §7: 1 to 70 characters in 0x21–0x7E.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUid;

impl fmt::Display for InvalidUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unique id must be 1 to 70 characters in 0x21-0x7E")
    }
}

impl core::error::Error for InvalidUid {}

/// Checks a unique id against RFC 1939 §7.
pub fn is_valid_uid(uid: &[u8]) -> bool {
    (1..=70).contains(&uid.len()) && uid.iter().all(|b| (0x21..=0x7E).contains(b))
}

impl Listing {
    /// An empty listing.
    pub const fn new() -> Self {
        Self {
            sizes: Vec::new(),
            uid_ends: Vec::new(),
            uids: Vec::new(),
        }
    }

    /// An empty listing with room for `messages` entries.
    pub fn with_capacity(messages: usize) -> Self {
        Self {
            sizes: Vec::with_capacity(messages),
            uid_ends: Vec::with_capacity(messages),
            uids: Vec::with_capacity(messages * 24),
        }
    }

    /// Appends the next message.
    pub fn push(&mut self, size: u64, uid: &[u8]) -> Result<(), InvalidUid> {
        if !is_valid_uid(uid) {
            return Err(InvalidUid);
        }
        let end = u32::try_from(self.uids.len() + uid.len()).map_err(|_| InvalidUid)?;
        self.uids.extend_from_slice(uid);
        self.uid_ends.push(end);
        self.sizes.push(size);
        Ok(())
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    /// True when the maildrop is empty.
    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// Wire size of message `index` (0-based).
    pub fn size(&self, index: usize) -> Option<u64> {
        self.sizes.get(index).copied()
    }

    /// Unique id of message `index` (0-based).
    pub fn uid(&self, index: usize) -> Option<&[u8]> {
        let end = *self.uid_ends.get(index)? as usize;
        let start = match index {
            0 => 0,
            i => *self.uid_ends.get(i - 1)? as usize,
        };
        self.uids.get(start..end)
    }

    /// Sum of all sizes.
    pub fn total_size(&self) -> u64 {
        self.sizes.iter().fold(0u64, |a, &s| a.saturating_add(s))
    }
}
