//! [`Secret`]: a wrapper that keeps passwords and SASL data out of `Debug` output.

use core::fmt;

/// A value that must never appear in logs: a PASS argument, SASL data, a token.
///
/// `Debug` prints `Secret(..)`; the value is reached only through [`Secret::expose`], so every
/// place that reads a credential is easy to find.
///
/// ```
/// use pop3_proto::Secret;
/// let s = Secret::new("tanstaaf");
/// assert_eq!(format!("{s:?}"), "Secret(..)");
/// assert_eq!(*s.expose(), "tanstaaf");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// The wrapped value. Name the call site's reason in a comment when it is not obvious.
    pub const fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}
