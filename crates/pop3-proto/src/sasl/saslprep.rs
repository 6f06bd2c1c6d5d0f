//! SASLprep (RFC 4013): the stringprep profile for user names and passwords.
//!
//! The four steps of RFC 3454 as RFC 4013 §2 profiles them:
//!
//! 1. **Map**: the "commonly mapped to nothing" characters (table B.1, e.g. U+00AD SOFT
//!    HYPHEN) are removed; non-ASCII spaces (table C.1.2, e.g. U+00A0) become U+0020.
//!    U+200B ZERO WIDTH SPACE is in both tables; it is removed.
//! 2. **Normalise** to NFKC, with the `unicode-normalization` crate (no_std).
//! 3. **Prohibit** tables C.1.2 and C.2.1 to C.9: controls, private use, non-characters,
//!    surrogates (which a Rust `str` cannot hold), characters inappropriate for plain text
//!    or canonical representation, display-changing and tagging characters.
//! 4. **Bidi** (RFC 3454 §6): a string with a right-to-left character (bidi class R or AL)
//!    must contain no left-to-right character (class L) and must begin and end with a
//!    right-to-left character.
//!
//! Strings are treated as *queries* (RFC 5802 §2.2, RFC 4616 §2): unassigned code points
//! (table A.1) are allowed, so no table of Unicode 3.2 assignments is needed.
//!
//! Deviation, documented: normalisation and bidi classes come from the Unicode version of
//! the `unicode-normalization` and `unicode-bidi` crates (15 or later) rather than Unicode
//! 3.2. Normalisation is stable for characters assigned in 3.2 (Unicode's stability
//! policy), so it differs only for characters assigned later, which a 3.2 implementation
//! passes through unnormalised as unassigned; a few bidi classes have changed since 3.2.
//!
//! Printable ASCII (U+0020 to U+007E) is unchanged by every step, so such strings are
//! returned borrowed without allocation.
//!
//! ```
//! use pop3_proto::sasl::saslprep::saslprep;
//! assert_eq!(saslprep("I\u{00AD}X").unwrap(), "IX");
//! assert_eq!(saslprep("\u{2168}").unwrap(), "IX");
//! assert!(saslprep("\u{0007}").is_err());
//! ```

use alloc::{borrow::Cow, string::String};

use unicode_bidi::BidiClass;
use unicode_normalization::UnicodeNormalization as _;

use super::SaslError;

/// Prepares `input` with SASLprep (RFC 4013) as a query string.
///
/// Errors: [`SaslError::ProhibitedCharacter`] for a character of the prohibited tables,
/// [`SaslError::InvalidBidi`] for a string that breaks the bidi rule. An empty result is
/// not an error here; callers that need a non-empty name or password check it (RFC 4616
/// §2: "If preparation fails or results in an empty string, verification SHALL fail").
pub fn saslprep(input: &str) -> Result<Cow<'_, str>, SaslError> {
    if input.bytes().all(|b| matches!(b, 0x20..=0x7e)) {
        // Printable ASCII: no mapping, NFKC-stable, nothing prohibited, all bidi L or neutral.
        return Ok(Cow::Borrowed(input));
    }
    // Step 1: map.
    let mapped = input.chars().filter_map(|c| {
        if mapped_to_nothing(c) {
            None
        } else if non_ascii_space(c) {
            Some(' ')
        } else {
            Some(c)
        }
    });
    // Step 2: NFKC.
    let prepared: String = mapped.nfkc().collect();
    // Step 3: prohibited output.
    if prepared.chars().any(prohibited) {
        return Err(SaslError::ProhibitedCharacter);
    }
    // Step 4: bidi.
    check_bidi(&prepared)?;
    Ok(Cow::Owned(prepared))
}

/// Like [`saslprep`], but takes bytes: anything that is not UTF-8 fails with
/// [`SaslError::InvalidUtf8`].
pub fn saslprep_bytes(input: &[u8]) -> Result<Cow<'_, str>, SaslError> {
    let text = core::str::from_utf8(input).map_err(|_| SaslError::InvalidUtf8)?;
    saslprep(text)
}

/// Table B.1: commonly mapped to nothing.
const fn mapped_to_nothing(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{1806}'
            | '\u{180B}'..='\u{180D}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
    )
}

/// Table C.1.2: non-ASCII space characters.
const fn non_ascii_space(c: char) -> bool {
    matches!(
        c,
        '\u{00A0}' | '\u{1680}' | '\u{2000}'..='\u{200B}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// Tables C.1.2, C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8 and C.9.
const fn prohibited(c: char) -> bool {
    let cp = c as u32;
    non_ascii_space(c)
        // C.2.1 ASCII control characters.
        || cp <= 0x1F
        || cp == 0x7F
        // C.2.2 non-ASCII control characters.
        || matches!(cp, 0x80..=0x9F
            | 0x06DD
            | 0x070F
            | 0x180E
            | 0x200C
            | 0x200D
            | 0x2028
            | 0x2029
            | 0x2060..=0x2063
            | 0x206A..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFC
            | 0x1D173..=0x1D17A)
        // C.3 private use.
        || matches!(cp, 0xE000..=0xF8FF | 0xF_0000..=0xF_FFFD | 0x10_0000..=0x10_FFFD)
        // C.4 non-character code points.
        || matches!(cp, 0xFDD0..=0xFDEF)
        || cp & 0xFFFE == 0xFFFE
        // C.5 surrogates cannot occur in a `char`.
        // C.6 inappropriate for plain text.
        || matches!(cp, 0xFFF9..=0xFFFD)
        // C.7 inappropriate for canonical representation.
        || matches!(cp, 0x2FF0..=0x2FFB)
        // C.8 change display properties or deprecated.
        || matches!(cp, 0x0340 | 0x0341 | 0x200E | 0x200F | 0x202A..=0x202E | 0x206A..=0x206F)
        // C.9 tagging characters.
        || matches!(cp, 0xE_0001 | 0xE_0020..=0xE_007F)
}

fn is_rand_al(c: char) -> bool {
    matches!(unicode_bidi::bidi_class(c), BidiClass::R | BidiClass::AL)
}

fn is_l(c: char) -> bool {
    unicode_bidi::bidi_class(c) == BidiClass::L
}

/// RFC 3454 §6, requirements 2 and 3 (requirement 1 is table C.8, checked above).
fn check_bidi(s: &str) -> Result<(), SaslError> {
    if !s.chars().any(is_rand_al) {
        return Ok(());
    }
    let first = s.chars().next().is_some_and(is_rand_al);
    let last = s.chars().next_back().is_some_and(is_rand_al);
    if s.chars().any(is_l) || !first || !last {
        return Err(SaslError::InvalidBidi);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4013_section3_examples() {
        // The seven examples of RFC 4013 §3.
        assert_eq!(saslprep("I\u{00AD}X").unwrap(), "IX");
        assert_eq!(saslprep("user").unwrap(), "user");
        assert_eq!(saslprep("USER").unwrap(), "USER");
        assert_eq!(saslprep("\u{00AA}").unwrap(), "a");
        assert_eq!(saslprep("\u{2168}").unwrap(), "IX");
        assert_eq!(saslprep("\u{0007}"), Err(SaslError::ProhibitedCharacter));
        assert_eq!(saslprep("\u{0627}\u{0031}"), Err(SaslError::InvalidBidi));
    }

    #[test]
    fn ascii_is_borrowed_and_unchanged() {
        let s = "pass word!~";
        assert!(matches!(saslprep(s), Ok(Cow::Borrowed(b)) if b == s));
        assert_eq!(saslprep(""), Ok(Cow::Borrowed("")));
    }

    #[test]
    fn mapping() {
        // Non-ASCII spaces become SPACE; mapped-to-nothing characters vanish.
        assert_eq!(saslprep("a\u{00A0}b\u{3000}c").unwrap(), "a b c");
        assert_eq!(saslprep("a\u{200B}b\u{FEFF}c\u{FE0F}").unwrap(), "abc");
        // A string of mapped-to-nothing characters only prepares to empty (R4616-5).
        assert_eq!(saslprep("\u{00AD}\u{00AD}").unwrap(), "");
        // NFKC composes and folds compatibility forms.
        assert_eq!(saslprep("e\u{0301}").unwrap(), "\u{00E9}");
        assert_eq!(saslprep("\u{FB01}").unwrap(), "fi");
        // Already-normal non-ASCII text stays as it is.
        assert_eq!(
            saslprep("p\u{00E4}ss w\u{00F6}rd").unwrap(),
            "p\u{00E4}ss w\u{00F6}rd"
        );
    }

    #[test]
    fn prohibited_tables() {
        for bad in [
            "\u{0000}",
            "a\tb",
            "a\u{7F}",
            "\u{0085}",
            "\u{2028}",
            "\u{E000}",
            "\u{F0000}",
            "\u{10FFFD}",
            "\u{FDD0}",
            "\u{FFFF}",
            "\u{1FFFE}",
            "\u{FFFD}",
            "\u{2FF0}",
            "\u{200E}",
            "\u{202E}",
            "\u{206A}",
            "\u{E0001}",
            "\u{E0041}",
            "\u{1D173}",
        ] {
            assert_eq!(
                saslprep(bad),
                Err(SaslError::ProhibitedCharacter),
                "{:?}",
                bad.escape_unicode().to_string()
            );
        }
        // Prohibition applies to the normalised output: U+0340 is a canonical singleton of
        // the allowed U+0300, so it passes as U+0300.
        assert_eq!(saslprep("a\u{0340}").unwrap(), "\u{00E0}");
        assert_eq!(saslprep_bytes(b"\xff"), Err(SaslError::InvalidUtf8));
        assert_eq!(saslprep_bytes(b"ok").unwrap(), "ok");
    }

    #[test]
    fn bidi_rule() {
        // All right-to-left: fine.
        assert_eq!(saslprep("\u{05D0}\u{05D1}").unwrap(), "\u{05D0}\u{05D1}");
        // RandAL first and last with a neutral digit inside: fine.
        assert!(saslprep("\u{0627}1\u{0628}").is_ok());
        // Mixed with a left-to-right letter: refused.
        assert_eq!(saslprep("\u{05D0}a\u{05D1}"), Err(SaslError::InvalidBidi));
        // Does not start with RandAL.
        assert_eq!(saslprep("1\u{0627}"), Err(SaslError::InvalidBidi));
    }
}
