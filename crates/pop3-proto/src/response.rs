//! Responses: status lines with response codes, the greeting, and CAPA lines. Encode (the
//! server) and parse (the client).
//!
//! ```text
//! single-line = status [SP text] CRLF            ; RFC 2449 §3, at most 512 octets
//! status      = "+OK" / "-ERR"
//! resp-code   = "[" resp-level *("/" resp-level) "]"
//! resp-level  = 1*rchar                          ; rchar = %x21-2E / %x30-5C / %x5E-7F
//! capa-line   = capa-tag *(SP param) CRLF        ; RFC 2449 §5
//! ```

use alloc::vec::Vec;
use core::fmt;

/// `+OK` or `-ERR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indicator {
    /// `+OK`
    Ok,
    /// `-ERR`
    Err,
}

/// An extended response code (RFC 2449 §8), kept exactly as sent so unknown and hierarchical
/// codes survive a round trip; [`ResponseCode::known`] classifies it.
///
/// ```
/// use pop3_proto::response::{KnownCode, ResponseCode};
/// let code = ResponseCode::new("sys/temp/diskfull").unwrap();
/// assert_eq!(code.known(), Some(KnownCode::SysTemp)); // R2449-RC-2: unknown detail ignored
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseCode<'a>(&'a str);

/// The response codes this crate understands (RFC 2449 §8.1, RFC 3206, RFC 6856 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KnownCode {
    /// `LOGIN-DELAY`: logged in too recently; try later.
    LoginDelay,
    /// `IN-USE`: credentials fine, maildrop locked by another session.
    InUse,
    /// `SYS/TEMP`: transient system failure; retry later without alarming the user.
    SysTemp,
    /// `SYS/PERM`: permanent system failure; needs an administrator.
    SysPerm,
    /// `AUTH`: the credentials were the problem.
    Auth,
    /// `UTF8`: the message needs UTF-8 mode.
    Utf8,
}

impl<'a> ResponseCode<'a> {
    /// `[LOGIN-DELAY]`
    pub const LOGIN_DELAY: Self = Self("LOGIN-DELAY");
    /// `[IN-USE]`
    pub const IN_USE: Self = Self("IN-USE");
    /// `[SYS/TEMP]`
    pub const SYS_TEMP: Self = Self("SYS/TEMP");
    /// `[SYS/PERM]`
    pub const SYS_PERM: Self = Self("SYS/PERM");
    /// `[AUTH]`
    pub const AUTH: Self = Self("AUTH");
    /// `[UTF8]`
    pub const UTF8: Self = Self("UTF8");

    /// Validates a code (the text between the brackets).
    pub fn new(code: &'a str) -> Result<Self, ResponseError> {
        let valid = !code.is_empty()
            && code.split('/').all(|level| {
                !level.is_empty()
                    && level
                        .bytes()
                        .all(|b| (0x21..=0x7F).contains(&b) && b != b'/' && b != b']')
            });
        if valid {
            Ok(Self(code))
        } else {
            Err(ResponseError::InvalidCode)
        }
    }

    /// The code as sent, without brackets.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }

    /// The known code this one is or refines, compared case-insensitively (R2449-RC-1/2).
    pub fn known(&self) -> Option<KnownCode> {
        let mut levels = self.0.split('/');
        let first = levels.next()?;
        let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        if eq(first, "LOGIN-DELAY") {
            Some(KnownCode::LoginDelay)
        } else if eq(first, "IN-USE") {
            Some(KnownCode::InUse)
        } else if eq(first, "AUTH") {
            Some(KnownCode::Auth)
        } else if eq(first, "UTF8") {
            Some(KnownCode::Utf8)
        } else if eq(first, "SYS") {
            match levels.next() {
                Some(l) if eq(l, "TEMP") => Some(KnownCode::SysTemp),
                Some(l) if eq(l, "PERM") => Some(KnownCode::SysPerm),
                _ => None,
            }
        } else {
            None
        }
    }
}

/// A status line: `+OK`/`-ERR`, an optional response code, and free text.
///
/// ```
/// use pop3_proto::response::{Indicator, ResponseCode, Status};
/// let s = Status::parse(b"-ERR [IN-USE] mailbox locked").unwrap();
/// assert_eq!(s.indicator, Indicator::Err);
/// assert_eq!(s.code, Some(ResponseCode::IN_USE));
/// assert_eq!(s.text, b"mailbox locked");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status<'a> {
    /// `+OK` or `-ERR`.
    pub indicator: Indicator,
    /// The response code, if the text starts with one.
    pub code: Option<ResponseCode<'a>>,
    /// The rest of the line (may be empty; not UTF-8 unless `LANG`/`UTF8` made it so).
    pub text: &'a [u8],
}

/// Why a response line did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// Neither `+OK` nor `-ERR` starts the line.
    NotAStatus,
    /// A `[` code that breaks the RFC 2449 grammar.
    InvalidCode,
    /// A STAT or LIST/UIDL line whose fields are not what RFC 1939 prescribes.
    InvalidListing,
    /// A CAPA line that is empty or has an invalid tag.
    InvalidCapability,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAStatus => "line is neither +OK nor -ERR",
            Self::InvalidCode => "malformed response code",
            Self::InvalidListing => "malformed scan or unique-id listing",
            Self::InvalidCapability => "malformed capability line",
        })
    }
}

impl core::error::Error for ResponseError {}

impl<'a> Status<'a> {
    /// A `+OK text` line.
    pub const fn ok(text: &'a [u8]) -> Self {
        Self {
            indicator: Indicator::Ok,
            code: None,
            text,
        }
    }

    /// A `-ERR text` line.
    pub const fn err(text: &'a [u8]) -> Self {
        Self {
            indicator: Indicator::Err,
            code: None,
            text,
        }
    }

    /// A `-ERR [code] text` line.
    pub const fn err_code(code: ResponseCode<'a>, text: &'a [u8]) -> Self {
        Self {
            indicator: Indicator::Err,
            code: Some(code),
            text,
        }
    }

    /// True for `+OK`.
    pub const fn is_ok(&self) -> bool {
        matches!(self.indicator, Indicator::Ok)
    }

    /// Parses a status line without its terminator. Lenient where RFC 1957 asks clients to
    /// be: a bare `+OK` is fine; `+OKAY` is not a status. A `[` that does not open a valid
    /// code is taken as text (some servers write `[` in free text), so only a code that
    /// parses is reported.
    pub fn parse(line: &'a [u8]) -> Result<Self, ResponseError> {
        let (indicator, rest) = if let Some(rest) = line.strip_prefix(b"+OK") {
            (Indicator::Ok, rest)
        } else if let Some(rest) = line.strip_prefix(b"-ERR") {
            (Indicator::Err, rest)
        } else {
            return Err(ResponseError::NotAStatus);
        };
        let text = match rest {
            [] => rest,
            [b' ' | b'\t', text @ ..] => text,
            _ => return Err(ResponseError::NotAStatus),
        };
        let (code, text) = split_code(text);
        Ok(Self {
            indicator,
            code,
            text,
        })
    }

    /// Appends the line with CRLF. The caller keeps it within 512 octets (RFC 2449 §4).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self.indicator {
            Indicator::Ok => b"+OK",
            Indicator::Err => b"-ERR",
        });
        if let Some(code) = self.code {
            out.extend_from_slice(b" [");
            out.extend_from_slice(code.0.as_bytes());
            out.push(b']');
        }
        if !self.text.is_empty() {
            out.push(b' ');
            out.extend_from_slice(self.text);
        }
        out.extend_from_slice(b"\r\n");
    }
}

fn split_code(text: &[u8]) -> (Option<ResponseCode<'_>>, &[u8]) {
    let Some(inner) = text.strip_prefix(b"[") else {
        return (None, text);
    };
    let Some(close) = memchr::memchr(b']', inner) else {
        return (None, text);
    };
    let Ok(code) = core::str::from_utf8(&inner[..close]) else {
        return (None, text);
    };
    match ResponseCode::new(code) {
        Ok(code) => {
            let rest = &inner[close + 1..];
            (Some(code), rest.strip_prefix(b" ").unwrap_or(rest))
        }
        Err(_) => (None, text),
    }
}

/// A SASL continuation line (`+ base64`, RFC 5034 §4), as the client receives it. Accepts a
/// bare `+` as an empty challenge (Q-10). Returns the still-encoded data.
pub fn parse_continuation(line: &[u8]) -> Option<&[u8]> {
    match line {
        [b'+'] => Some(&[]),
        [b'+', b' ', data @ ..] => Some(data),
        _ => None,
    }
}

/// The server greeting: a status line whose text may carry an APOP timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Greeting<'a> {
    /// The status line (a `-ERR` greeting means "try later", ROB-9).
    pub status: Status<'a>,
    /// The APOP timestamp `<...@...>`, brackets included, if one that is safe to use is
    /// present (R1939-APOP-7).
    pub timestamp: Option<&'a [u8]>,
}

impl<'a> Greeting<'a> {
    /// Parses a greeting line without its terminator.
    pub fn parse(line: &'a [u8]) -> Result<Self, ResponseError> {
        let status = Status::parse(line)?;
        let timestamp = crate::apop::find_timestamp(status.text);
        Ok(Self { status, timestamp })
    }
}

/// How long `EXPIRE` keeps mail (RFC 2449 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expire {
    /// Mail is never deleted by the server.
    Never,
    /// Mail is deleted this many days after retrieval (0: on retrieval).
    Days(u32),
}

/// One CAPA line (RFC 2449 §5–6, RFC 2595, RFC 3206, RFC 5034, RFC 6856).
///
/// ```
/// use pop3_proto::response::Capability;
/// let c = Capability::parse(b"SASL PLAIN SCRAM-SHA-256").unwrap();
/// assert_eq!(c, Capability::Sasl("PLAIN SCRAM-SHA-256"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Capability<'a> {
    /// `TOP`
    Top,
    /// `USER`
    User,
    /// `SASL mech...`: the space-separated mechanism list.
    Sasl(&'a str),
    /// `RESP-CODES`
    RespCodes,
    /// `LOGIN-DELAY secs [USER]`
    LoginDelay {
        /// Minimum seconds between logins.
        seconds: u32,
        /// The value may differ per user (sent before login only).
        per_user: bool,
    },
    /// `PIPELINING`
    Pipelining,
    /// `EXPIRE days|NEVER [USER]`
    Expire {
        /// The retention policy.
        policy: Expire,
        /// The value may differ per user (sent before login only).
        per_user: bool,
    },
    /// `UIDL`
    Uidl,
    /// `IMPLEMENTATION text` (the text is the rest of the line, spaces included: Q-13).
    Implementation(&'a str),
    /// `STLS`
    Stls,
    /// `AUTH-RESP-CODE`
    AuthRespCode,
    /// `UTF8 [USER]`
    Utf8 {
        /// UTF-8 user names and passwords are accepted by USER/PASS/APOP.
        user: bool,
    },
    /// `LANG`
    Lang,
    /// Any other capability, kept as sent (IANA-2).
    Other {
        /// The tag.
        tag: &'a str,
        /// Everything after the tag's space (may be empty).
        args: &'a str,
    },
}

impl<'a> Capability<'a> {
    /// Parses one CAPA line (without terminator). Tags compare case-insensitively; a known
    /// tag with arguments it cannot take is kept as [`Capability::Other`].
    pub fn parse(line: &'a [u8]) -> Result<Self, ResponseError> {
        let line = core::str::from_utf8(line).map_err(|_| ResponseError::InvalidCapability)?;
        let (tag, args) = line.split_once(' ').unwrap_or((line, ""));
        if tag.is_empty() || !tag.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
            return Err(ResponseError::InvalidCapability);
        }
        let is = |t: &str| tag.eq_ignore_ascii_case(t);
        let words = || args.split(' ').filter(|w| !w.is_empty());
        let no_args = args.trim().is_empty();
        let per_user = |rest: Option<&str>| match rest {
            None => Some(false),
            Some(u) if u.eq_ignore_ascii_case("USER") => Some(true),
            Some(_) => None,
        };
        let cap = if is("TOP") && no_args {
            Self::Top
        } else if is("USER") && no_args {
            Self::User
        } else if is("SASL") {
            Self::Sasl(args.trim())
        } else if is("RESP-CODES") && no_args {
            Self::RespCodes
        } else if is("PIPELINING") && no_args {
            Self::Pipelining
        } else if is("UIDL") && no_args {
            Self::Uidl
        } else if is("IMPLEMENTATION") {
            Self::Implementation(args)
        } else if is("STLS") && no_args {
            Self::Stls
        } else if is("AUTH-RESP-CODE") && no_args {
            Self::AuthRespCode
        } else if is("LANG") && no_args {
            Self::Lang
        } else if is("UTF8") && (no_args || args.trim().eq_ignore_ascii_case("USER")) {
            Self::Utf8 { user: !no_args }
        } else if let Some(cap) = (is("LOGIN-DELAY"))
            .then(|| {
                let mut w = words();
                let seconds = parse_u32(w.next()?)?;
                let per_user = per_user(w.next())?;
                w.next()
                    .is_none()
                    .then_some(Self::LoginDelay { seconds, per_user })
            })
            .flatten()
        {
            cap
        } else if let Some(cap) = (is("EXPIRE"))
            .then(|| {
                let mut w = words();
                let first = w.next()?;
                let policy = if first.eq_ignore_ascii_case("NEVER") {
                    Expire::Never
                } else {
                    Expire::Days(parse_u32(first)?)
                };
                let per_user = per_user(w.next())?;
                w.next()
                    .is_none()
                    .then_some(Self::Expire { policy, per_user })
            })
            .flatten()
        {
            cap
        } else {
            Self::Other { tag, args }
        };
        Ok(cap)
    }

    /// Appends the CAPA line with CRLF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let user = |out: &mut Vec<u8>, per_user: bool| {
            if per_user {
                out.extend_from_slice(b" USER");
            }
        };
        match self {
            Self::Top => out.extend_from_slice(b"TOP"),
            Self::User => out.extend_from_slice(b"USER"),
            Self::Sasl(mechs) => {
                out.extend_from_slice(b"SASL ");
                out.extend_from_slice(mechs.as_bytes());
            }
            Self::RespCodes => out.extend_from_slice(b"RESP-CODES"),
            Self::LoginDelay { seconds, per_user } => {
                out.extend_from_slice(b"LOGIN-DELAY ");
                crate::fmt::push_u64(out, u64::from(*seconds));
                user(out, *per_user);
            }
            Self::Pipelining => out.extend_from_slice(b"PIPELINING"),
            Self::Expire { policy, per_user } => {
                out.extend_from_slice(b"EXPIRE ");
                match policy {
                    Expire::Never => out.extend_from_slice(b"NEVER"),
                    Expire::Days(d) => crate::fmt::push_u64(out, u64::from(*d)),
                }
                user(out, *per_user);
            }
            Self::Uidl => out.extend_from_slice(b"UIDL"),
            Self::Implementation(text) => {
                out.extend_from_slice(b"IMPLEMENTATION ");
                out.extend_from_slice(text.as_bytes());
            }
            Self::Stls => out.extend_from_slice(b"STLS"),
            Self::AuthRespCode => out.extend_from_slice(b"AUTH-RESP-CODE"),
            Self::Utf8 { user } => {
                out.extend_from_slice(if *user { b"UTF8 USER" } else { b"UTF8" });
            }
            Self::Lang => out.extend_from_slice(b"LANG"),
            Self::Other { tag, args } => {
                out.extend_from_slice(tag.as_bytes());
                if !args.is_empty() {
                    out.push(b' ');
                    out.extend_from_slice(args.as_bytes());
                }
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// `msg SP size` (LIST) or `msg SP uid` (UIDL), the fields separated by SP or HT (Q-8);
/// anything after the second field is ignored (R1939-STAT-3 applies the same rule to STAT).
pub fn parse_pair(line: &[u8]) -> Result<(&[u8], &[u8]), ResponseError> {
    let mut fields = line
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|f| !f.is_empty());
    match (fields.next(), fields.next()) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(ResponseError::InvalidListing),
    }
}

/// Parses a decimal field of a STAT/LIST reply (leading zeros are decimal, R1939-GEN-14).
pub fn parse_decimal(field: &[u8]) -> Result<u64, ResponseError> {
    if field.is_empty() || field.len() > 20 || !field.iter().all(u8::is_ascii_digit) {
        return Err(ResponseError::InvalidListing);
    }
    field
        .iter()
        .try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .ok_or(ResponseError::InvalidListing)
}

fn parse_u32(s: &str) -> Option<u32> {
    u32::try_from(parse_decimal(s.as_bytes()).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use alloc::{string::String, vec::Vec};

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn status_known_answers() {
        type Row<'a> = (&'a [u8], Indicator, Option<&'a str>, &'a [u8]);
        let table: &[Row<'_>] = &[
            (b"+OK", Indicator::Ok, None, b""),
            (b"+OK 2 320", Indicator::Ok, None, b"2 320"),
            (b"-ERR", Indicator::Err, None, b""),
            (
                b"-ERR [IN-USE] locked",
                Indicator::Err,
                Some("IN-USE"),
                b"locked",
            ),
            (
                b"-ERR [SYS/TEMP/DISKFULL] x",
                Indicator::Err,
                Some("SYS/TEMP/DISKFULL"),
                b"x",
            ),
            (b"-ERR [XYZZY] x", Indicator::Err, Some("XYZZY"), b"x"),
            (b"-ERR [] x", Indicator::Err, None, b"[] x"),
            (b"-ERR [A/] x", Indicator::Err, None, b"[A/] x"),
            (b"-ERR [", Indicator::Err, None, b"["),
            (b"+OK [AUTH]", Indicator::Ok, Some("AUTH"), b""),
        ];
        for (line, ind, code, text) in table {
            let s = Status::parse(line).unwrap();
            assert_eq!(s.indicator, *ind);
            assert_eq!(s.code.map(|c| c.as_str()), *code);
            assert_eq!(s.text, *text);
        }
        for bad in [&b"+OKAY"[..], b"OK", b"", b"+ok", b"* OK"] {
            assert_eq!(Status::parse(bad), Err(ResponseError::NotAStatus));
        }
    }

    #[test]
    fn known_codes_r2449_rc() {
        let table = [
            ("in-use", Some(KnownCode::InUse)),
            ("IN-USE/OTHERHOST", Some(KnownCode::InUse)),
            ("SYS/TEMP/DISKFULL", Some(KnownCode::SysTemp)),
            ("sys/perm", Some(KnownCode::SysPerm)),
            ("SYS", None),
            ("SYS/OTHER", None),
            ("LOGIN-DELAY", Some(KnownCode::LoginDelay)),
            ("AUTH", Some(KnownCode::Auth)),
            ("UTF8", Some(KnownCode::Utf8)),
            ("XYZZY", None),
        ];
        for (code, known) in table {
            assert_eq!(ResponseCode::new(code).unwrap().known(), known, "{code}");
        }
    }

    #[test]
    fn greeting_timestamp() {
        let g =
            Greeting::parse(b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>").unwrap();
        assert_eq!(g.timestamp, Some(&b"<1896.697170952@dbc.mtview.ca.us>"[..]));
        assert_eq!(Greeting::parse(b"+OK ready").unwrap().timestamp, None);
        assert_eq!(Greeting::parse(b"+OK <a b@c>").unwrap().timestamp, None);
        assert!(
            !Greeting::parse(b"-ERR [SYS/TEMP] busy")
                .unwrap()
                .status
                .is_ok()
        );
    }

    #[test]
    fn continuation_lines() {
        assert_eq!(parse_continuation(b"+ "), Some(&b""[..]));
        assert_eq!(parse_continuation(b"+"), Some(&b""[..]));
        assert_eq!(parse_continuation(b"+ PDE4OTY+"), Some(&b"PDE4OTY+"[..]));
        assert_eq!(parse_continuation(b"+OK"), None);
    }

    #[test]
    fn capability_known_answers() {
        let table: &[(&[u8], Capability<'_>)] = &[
            (b"TOP", Capability::Top),
            (b"top", Capability::Top),
            (b"USER", Capability::User),
            (b"SASL PLAIN LOGIN", Capability::Sasl("PLAIN LOGIN")),
            (b"RESP-CODES", Capability::RespCodes),
            (
                b"LOGIN-DELAY 900",
                Capability::LoginDelay {
                    seconds: 900,
                    per_user: false,
                },
            ),
            (
                b"LOGIN-DELAY 0 USER",
                Capability::LoginDelay {
                    seconds: 0,
                    per_user: true,
                },
            ),
            (b"PIPELINING", Capability::Pipelining),
            (
                b"EXPIRE NEVER",
                Capability::Expire {
                    policy: Expire::Never,
                    per_user: false,
                },
            ),
            (
                b"EXPIRE 60 USER",
                Capability::Expire {
                    policy: Expire::Days(60),
                    per_user: true,
                },
            ),
            (b"UIDL", Capability::Uidl),
            (
                b"IMPLEMENTATION Cyrus POP3 v2.x",
                Capability::Implementation("Cyrus POP3 v2.x"),
            ),
            (b"STLS", Capability::Stls),
            (b"AUTH-RESP-CODE", Capability::AuthRespCode),
            (b"UTF8", Capability::Utf8 { user: false }),
            (b"UTF8 USER", Capability::Utf8 { user: true }),
            (b"LANG", Capability::Lang),
            (
                b"X-FOO bar",
                Capability::Other {
                    tag: "X-FOO",
                    args: "bar",
                },
            ),
            (
                b"EXPIRE soon",
                Capability::Other {
                    tag: "EXPIRE",
                    args: "soon",
                },
            ),
            (
                b"TOP 1",
                Capability::Other {
                    tag: "TOP",
                    args: "1",
                },
            ),
        ];
        for (line, cap) in table {
            assert_eq!(
                Capability::parse(line),
                Ok(*cap),
                "{:?}",
                core::str::from_utf8(line)
            );
        }
        assert!(Capability::parse(b"").is_err());
        assert!(Capability::parse(b" TOP").is_err());
    }

    #[test]
    fn pairs_split_on_space_or_tab() {
        assert_eq!(parse_pair(b"1 058"), Ok((&b"1"[..], &b"058"[..])));
        assert_eq!(parse_pair(b"1\tabc extra"), Ok((&b"1"[..], &b"abc"[..])));
        assert_eq!(parse_decimal(b"058"), Ok(58));
        assert!(parse_pair(b"1").is_err());
        assert!(parse_decimal(b"99999999999999999999999").is_err());
    }

    fn code() -> impl Strategy<Value = String> {
        "[!-.0-\\\\^-~]{1,8}(/[!-.0-\\\\^-~]{1,8}){0,2}"
    }

    proptest! {
        #[test]
        fn status_roundtrip(ok in any::<bool>(), code in proptest::option::of(code()), text in "([!-Z\\\\^-~][ -~]{0,40})?") {
            let code = code.as_deref().map(|c| ResponseCode::new(c).unwrap());
            // A text starting with '[' would be read as a code when none is given.
            prop_assume!(code.is_some() || !text.starts_with('['));
            let s = Status {
                indicator: if ok { Indicator::Ok } else { Indicator::Err },
                code,
                text: text.as_bytes(),
            };
            let mut out = Vec::new();
            s.encode(&mut out);
            prop_assert!(out.ends_with(b"\r\n"));
            prop_assert_eq!(Status::parse(&out[..out.len() - 2]), Ok(s));
        }

        #[test]
        fn capability_roundtrip(tag in "[A-Z][A-Z0-9-]{0,15}", args in "([!-~]{1,10}( [!-~]{1,10}){0,3})?") {
            let line = if args.is_empty() { tag.clone() } else { alloc::format!("{tag} {args}") };
            let cap = Capability::parse(line.as_bytes()).unwrap();
            let mut out = Vec::new();
            cap.encode(&mut out);
            prop_assert_eq!(Capability::parse(&out[..out.len() - 2]), Ok(cap));
        }

        #[test]
        fn parsed_lines_reencode_to_an_equal_value(line in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(status) = Status::parse(&line) {
                let mut out = Vec::new();
                status.encode(&mut out);
                prop_assert_eq!(Status::parse(&out[..out.len() - 2]), Ok(status));
            }
            if let Ok(cap) = Capability::parse(&line) {
                let mut out = Vec::new();
                cap.encode(&mut out);
                prop_assert_eq!(Capability::parse(&out[..out.len() - 2]), Ok(cap));
            }
        }
    }
}
