//! From a user name (network input) to a maildrop path, without path traversal.

use std::path::{Path, PathBuf};

use crate::OpenError;

/// Whether `user` can be put into a path: 1 to 255 bytes, no `/`, no NUL or other control
/// character, and not starting with `.` (so never `.`, `..`, a Maildir++ folder or one of
/// this crate's dot-named temp files).
///
/// ```
/// use pop3_maildrop::is_valid_user_name;
/// assert!(is_valid_user_name("alice@example.org"));
/// assert!(!is_valid_user_name("../etc"));
/// assert!(!is_valid_user_name("a/b"));
/// ```
pub fn is_valid_user_name(user: &str) -> bool {
    (1..=255).contains(&user.len())
        && !user.starts_with('.')
        && !user.chars().any(|c| c == '/' || c.is_control())
}

/// Where a user's maildrop is: a template in which `%u` is the user name, `%n` its part
/// before the last `@` (the whole name when there is none), `%d` the part after it (empty
/// when there is none), and `%%` a `%`. Substituted text is never expanded again.
///
/// ```
/// use pop3_maildrop::PathTemplate;
/// let t = PathTemplate::new("/srv/mail/%d/%n/Maildir");
/// assert_eq!(t.resolve("bob@example.org").unwrap(), std::path::Path::new("/srv/mail/example.org/bob/Maildir"));
/// assert_eq!(PathTemplate::under("/var/mail").resolve("bob").unwrap(), std::path::Path::new("/var/mail/bob"));
/// assert!(t.resolve("../root").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    template: String,
}

impl PathTemplate {
    /// A template such as `/home/%u/Maildir`.
    pub fn new(template: impl Into<String>) -> Self {
        Self {
            template: template.into(),
        }
    }

    /// `dir/%u`: one maildrop per user directly under `dir` (`/var/mail/alice`).
    pub fn under(dir: impl AsRef<Path>) -> Self {
        let mut template = dir.as_ref().to_string_lossy().into_owned();
        template = template.replace('%', "%%");
        if !template.ends_with('/') {
            template.push('/');
        }
        template.push_str("%u");
        Self { template }
    }

    /// The path of `user`'s maildrop, or [`OpenError::InvalidUser`].
    pub fn resolve(&self, user: &str) -> Result<PathBuf, OpenError> {
        if !is_valid_user_name(user) {
            return Err(OpenError::InvalidUser);
        }
        let (local, domain) = match user.rsplit_once('@') {
            Some((l, d)) => (l, d),
            None => (user, ""),
        };
        let mut out = String::with_capacity(self.template.len() + user.len());
        let mut chars = self.template.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('u') => out.push_str(user),
                Some('n') => out.push_str(local),
                Some('d') => out.push_str(domain),
                Some('%') => out.push('%'),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            }
        }
        Ok(PathBuf::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        for ok in [
            "a",
            "alice",
            "a.b",
            "a@b.c",
            "x+tag",
            "ünïcode",
            &"a".repeat(255),
        ] {
            assert!(is_valid_user_name(ok), "{ok:?}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "/abs",
            "a\0b",
            "a\nb",
            "tab\t",
            &"a".repeat(256),
        ] {
            assert!(!is_valid_user_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn templates() {
        let t = PathTemplate::new("/m/%u/%n/%d/%%u/%x/%");
        assert_eq!(t.resolve("a@b").unwrap(), Path::new("/m/a@b/a/b/%u/%x/%"));
        assert_eq!(t.resolve("a").unwrap(), Path::new("/m/a/a//%u/%x/%"));
        // Substituted text is not expanded again.
        assert_eq!(
            PathTemplate::new("/m/%u").resolve("%d").unwrap(),
            Path::new("/m/%d")
        );
        assert_eq!(
            PathTemplate::under("/var/100%/").resolve("bob").unwrap(),
            Path::new("/var/100%/bob")
        );
        assert!(matches!(
            PathTemplate::under("/x").resolve(".."),
            Err(OpenError::InvalidUser)
        ));
    }
}
