//! [`Parsed`]: the result of a parser that may need more input.

/// Outcome of a successful parse over possibly incomplete input (httparse's `Status`; named
/// `Parsed` because in POP3 "status" means `+OK`/`-ERR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Parsed<T> {
    /// A whole item was parsed.
    Complete(T),
    /// The input ends before the item does; call again with more bytes. Not an error.
    Partial,
}

impl<T> Parsed<T> {
    /// The complete value, if any.
    pub fn complete(self) -> Option<T> {
        match self {
            Self::Complete(v) => Some(v),
            Self::Partial => None,
        }
    }

    /// True for [`Parsed::Partial`].
    pub const fn is_partial(&self) -> bool {
        matches!(self, Self::Partial)
    }
}
