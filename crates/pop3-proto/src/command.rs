//! POP3 commands: [`Command`] parsing (borrowing) and encoding.
//!
//! Grammar (RFC 2449 §3, RFC 1939 §3): `command = keyword *(SP param) CRLF`, keywords are
//! case-insensitive, `param = 1*VCHAR`. Deviations, each deliberate:
//! - `PASS` takes the rest of the line as one argument, spaces included (RFC 1939 §7 says the
//!   password may contain spaces, checklist R1939-PASS-2).
//! - Arguments may carry UTF-8 (RFC 6856 `UTF8 USER`); names must be valid UTF-8.
//! - Trailing spaces after the last argument are tolerated (scripts send them, Q-22); any
//!   other extra argument is an error.
//! - Message numbers are decimal digits only (no sign, no hex); leading zeros are read as
//!   decimal (`RETR 01` is message 1, R1939-GEN-14). The `TOP` line count saturates instead of
//!   failing, so a huge count means "the whole message" (R1939-TOP-4).

use alloc::vec::Vec;
use core::fmt;

use crate::{Parsed, Secret};

/// A POP3 command, borrowing its arguments from the input line.
///
/// ```
/// use pop3_proto::{Command, Parsed};
/// let Parsed::Complete((len, cmd)) = Command::parse(b"retr 1\r\nQUIT\r\n").unwrap() else {
///     panic!()
/// };
/// assert_eq!((len, cmd), (8, Command::Retr(1)));
/// let mut out = Vec::new();
/// cmd.encode(&mut out);
/// assert_eq!(out, b"RETR 1\r\n");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command<'a> {
    /// `USER name` (RFC 1939 §7).
    User(&'a str),
    /// `PASS password` (RFC 1939 §7); the password may contain spaces.
    Pass(Secret<&'a [u8]>),
    /// `APOP name digest` (RFC 1939 §7).
    Apop {
        /// The mailbox name.
        name: &'a str,
        /// 32 hex digits (not checked here; a wrong digest simply fails).
        digest: &'a str,
    },
    /// `AUTH mechanism [initial-response]` (RFC 5034 §4).
    Auth {
        /// The SASL mechanism name as sent (compare case-insensitively).
        mechanism: &'a str,
        /// The initial response as sent: base64 text, or `=` for an empty one.
        initial_response: Option<Secret<&'a [u8]>>,
    },
    /// Bare `AUTH`: list the SASL mechanisms (Microsoft's extension; sent by Outlook and
    /// Thunderbird, checklist DF-AUTHLIST-1).
    AuthList,
    /// `STAT`.
    Stat,
    /// `LIST [msg]`.
    List(Option<u32>),
    /// `RETR msg`.
    Retr(u32),
    /// `DELE msg`.
    Dele(u32),
    /// `NOOP`.
    Noop,
    /// `RSET`.
    Rset,
    /// `QUIT`.
    Quit,
    /// `TOP msg n` (RFC 1939 §7).
    Top {
        /// The message number.
        msg: u32,
        /// Number of body lines; saturates at `u64::MAX`.
        lines: u64,
    },
    /// `UIDL [msg]`.
    Uidl(Option<u32>),
    /// `CAPA` (RFC 2449 §5).
    Capa,
    /// `STLS` (RFC 2595 §4).
    Stls,
    /// `UTF8` (RFC 6856 §2).
    Utf8,
    /// `LANG [lang-range]` (RFC 6856 §3).
    Lang(Option<&'a str>),
}

/// Why a command line was rejected. The server answers each with `-ERR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// The keyword is not a command we know (or not 3–4 letters).
    UnknownCommand,
    /// A required argument is missing.
    MissingArgument,
    /// More arguments than the command takes.
    TooManyArguments,
    /// A message number or count that is not plain decimal digits, or out of range.
    InvalidNumber,
    /// An argument with control characters, an empty argument (two spaces), or a name
    /// that is not UTF-8.
    InvalidArgument,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownCommand => "unknown command",
            Self::MissingArgument => "missing argument",
            Self::TooManyArguments => "too many arguments",
            Self::InvalidNumber => "invalid number",
            Self::InvalidArgument => "invalid argument",
        })
    }
}

impl core::error::Error for CommandError {}

impl<'a> Command<'a> {
    /// Parses one command from the start of `input`. Returns the number of bytes the line
    /// took (terminator included) with the command, or [`Parsed::Partial`] if no line end has
    /// arrived yet. Applies no length limit: framing does (see [`crate::line`]).
    pub fn parse(input: &'a [u8]) -> Result<Parsed<(usize, Self)>, CommandError> {
        let Some(lf) = memchr::memchr(b'\n', input) else {
            return Ok(Parsed::Partial);
        };
        let line = &input[..lf];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        Self::parse_line(line).map(|c| Parsed::Complete((lf + 1, c)))
    }

    /// Parses a line without its terminator.
    pub fn parse_line(line: &'a [u8]) -> Result<Self, CommandError> {
        let (keyword, rest) = match memchr::memchr(b' ', line) {
            Some(sp) => (&line[..sp], Some(&line[sp + 1..])),
            None => (line, None),
        };
        if !(3..=4).contains(&keyword.len()) {
            return Err(CommandError::UnknownCommand);
        }
        let mut kw = [0u8; 4];
        kw[..keyword.len()].copy_from_slice(keyword);
        kw.make_ascii_uppercase();
        let kw = &kw[..keyword.len()];

        if kw == b"PASS" {
            // The whole rest is the password, spaces included; it may not be empty.
            let pass = rest
                .filter(|p| !p.is_empty())
                .ok_or(CommandError::MissingArgument)?;
            if pass.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n') {
                return Err(CommandError::InvalidArgument);
            }
            return Ok(Self::Pass(Secret::new(pass)));
        }

        let mut args = Args::new(rest)?;
        let cmd = match kw {
            b"USER" => Self::User(args.name()?),
            b"APOP" => Self::Apop {
                name: args.name()?,
                digest: args.name()?,
            },
            b"AUTH" => match args.optional() {
                None => Self::AuthList,
                Some(mech) => Self::Auth {
                    mechanism: as_str(mech)?,
                    initial_response: args.optional().map(Secret::new),
                },
            },
            b"STAT" => Self::Stat,
            b"LIST" => Self::List(args.optional().map(parse_msg).transpose()?),
            b"RETR" => Self::Retr(parse_msg(args.required()?)?),
            b"DELE" => Self::Dele(parse_msg(args.required()?)?),
            b"NOOP" => Self::Noop,
            b"RSET" => Self::Rset,
            b"QUIT" => Self::Quit,
            b"TOP" => Self::Top {
                msg: parse_msg(args.required()?)?,
                lines: parse_count(args.required()?)?,
            },
            b"UIDL" => Self::Uidl(args.optional().map(parse_msg).transpose()?),
            b"CAPA" => Self::Capa,
            b"STLS" => Self::Stls,
            b"UTF8" => Self::Utf8,
            b"LANG" => Self::Lang(args.optional().map(as_str).transpose()?),
            _ => return Err(CommandError::UnknownCommand),
        };
        args.finish()?;
        Ok(cmd)
    }

    /// Appends the command line, CRLF included. Keywords are written in upper case.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let arg = |out: &mut Vec<u8>, a: &[u8]| {
            out.push(b' ');
            out.extend_from_slice(a);
        };
        match self {
            Self::User(name) => {
                out.extend_from_slice(b"USER");
                arg(out, name.as_bytes());
            }
            Self::Pass(p) => {
                out.extend_from_slice(b"PASS");
                arg(out, p.expose());
            }
            Self::Apop { name, digest } => {
                out.extend_from_slice(b"APOP");
                arg(out, name.as_bytes());
                arg(out, digest.as_bytes());
            }
            Self::Auth {
                mechanism,
                initial_response,
            } => {
                out.extend_from_slice(b"AUTH");
                arg(out, mechanism.as_bytes());
                if let Some(ir) = initial_response {
                    arg(out, ir.expose());
                }
            }
            Self::AuthList => out.extend_from_slice(b"AUTH"),
            Self::Stat => out.extend_from_slice(b"STAT"),
            Self::List(n) | Self::Uidl(n) => {
                out.extend_from_slice(if matches!(self, Self::List(_)) {
                    b"LIST"
                } else {
                    b"UIDL"
                });
                if let Some(n) = n {
                    out.push(b' ');
                    crate::fmt::push_u64(out, u64::from(*n));
                }
            }
            Self::Retr(n) | Self::Dele(n) => {
                out.extend_from_slice(if matches!(self, Self::Retr(_)) {
                    b"RETR "
                } else {
                    b"DELE "
                });
                crate::fmt::push_u64(out, u64::from(*n));
            }
            Self::Noop => out.extend_from_slice(b"NOOP"),
            Self::Rset => out.extend_from_slice(b"RSET"),
            Self::Quit => out.extend_from_slice(b"QUIT"),
            Self::Top { msg, lines } => {
                out.extend_from_slice(b"TOP ");
                crate::fmt::push_u64(out, u64::from(*msg));
                out.push(b' ');
                crate::fmt::push_u64(out, *lines);
            }
            Self::Capa => out.extend_from_slice(b"CAPA"),
            Self::Stls => out.extend_from_slice(b"STLS"),
            Self::Utf8 => out.extend_from_slice(b"UTF8"),
            Self::Lang(range) => {
                out.extend_from_slice(b"LANG");
                if let Some(r) = range {
                    arg(out, r.as_bytes());
                }
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The upper-case keyword, e.g. `"RETR"` (for logs and error texts).
    pub const fn keyword(&self) -> &'static str {
        match self {
            Self::User(_) => "USER",
            Self::Pass(_) => "PASS",
            Self::Apop { .. } => "APOP",
            Self::Auth { .. } | Self::AuthList => "AUTH",
            Self::Stat => "STAT",
            Self::List(_) => "LIST",
            Self::Retr(_) => "RETR",
            Self::Dele(_) => "DELE",
            Self::Noop => "NOOP",
            Self::Rset => "RSET",
            Self::Quit => "QUIT",
            Self::Top { .. } => "TOP",
            Self::Uidl(_) => "UIDL",
            Self::Capa => "CAPA",
            Self::Stls => "STLS",
            Self::Utf8 => "UTF8",
            Self::Lang(_) => "LANG",
        }
    }
}

/// Space-separated arguments after the keyword.
struct Args<'a> {
    rest: &'a [u8],
}

impl<'a> Args<'a> {
    fn new(rest: Option<&'a [u8]>) -> Result<Self, CommandError> {
        let rest = rest.unwrap_or_default();
        // param = 1*VCHAR, plus UTF-8 octets (RFC 6856); control characters never.
        if rest.iter().any(|&b| b < 0x20 || b == 0x7F) {
            return Err(CommandError::InvalidArgument);
        }
        // Trailing spaces are tolerated (Q-22).
        let end = rest.iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1);
        let rest = &rest[..end];
        // Two spaces in a row: never guess which argument was meant (R2449-GRAM-1).
        if rest.first() == Some(&b' ') || memchr::memmem::find(rest, b"  ").is_some() {
            return Err(CommandError::InvalidArgument);
        }
        Ok(Self { rest })
    }

    fn optional(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let (arg, rest) = match memchr::memchr(b' ', self.rest) {
            Some(sp) => (&self.rest[..sp], &self.rest[sp + 1..]),
            None => (self.rest, &[][..]),
        };
        self.rest = rest;
        Some(arg)
    }

    fn required(&mut self) -> Result<&'a [u8], CommandError> {
        self.optional().ok_or(CommandError::MissingArgument)
    }

    fn name(&mut self) -> Result<&'a str, CommandError> {
        as_str(self.required()?)
    }

    fn finish(self) -> Result<(), CommandError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(CommandError::TooManyArguments)
        }
    }
}

fn as_str(arg: &[u8]) -> Result<&str, CommandError> {
    if arg.is_empty() {
        return Err(CommandError::InvalidArgument);
    }
    core::str::from_utf8(arg).map_err(|_| CommandError::InvalidArgument)
}

/// A message number: 1–10 decimal digits that fit a `u32` (0 is parsed; the server answers
/// "no such message").
fn parse_msg(arg: &[u8]) -> Result<u32, CommandError> {
    if arg.is_empty() || !arg.iter().all(u8::is_ascii_digit) {
        return Err(CommandError::InvalidNumber);
    }
    arg.iter()
        .try_fold(0u32, |n, &d| {
            n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        })
        .ok_or(CommandError::InvalidNumber)
}

/// A `TOP` line count: decimal digits, saturating.
fn parse_count(arg: &[u8]) -> Result<u64, CommandError> {
    if arg.is_empty() || !arg.iter().all(u8::is_ascii_digit) {
        return Err(CommandError::InvalidNumber);
    }
    Ok(arg.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;

    fn p(line: &[u8]) -> Result<Command<'_>, CommandError> {
        Command::parse_line(line)
    }

    #[test]
    fn known_answers() {
        let table: &[(&[u8], Command<'_>)] = &[
            (b"USER mrose", Command::User("mrose")),
            (b"user alice", Command::User("alice")),
            (b"PASS pass word", Command::Pass(Secret::new(b"pass word"))),
            (b"PASS  lead", Command::Pass(Secret::new(b" lead"))),
            (
                b"APOP mrose c4c9334bac560ecc979e58001b3e22fb",
                Command::Apop {
                    name: "mrose",
                    digest: "c4c9334bac560ecc979e58001b3e22fb",
                },
            ),
            (b"AUTH", Command::AuthList),
            (
                b"AUTH PLAIN",
                Command::Auth {
                    mechanism: "PLAIN",
                    initial_response: None,
                },
            ),
            (
                b"auth plain AHRpbQB0YW5zdGFhZnRhbnN0YWFm",
                Command::Auth {
                    mechanism: "plain",
                    initial_response: Some(Secret::new(b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm")),
                },
            ),
            (
                b"AUTH EXTERNAL =",
                Command::Auth {
                    mechanism: "EXTERNAL",
                    initial_response: Some(Secret::new(b"=")),
                },
            ),
            (b"STAT", Command::Stat),
            (b"StAt", Command::Stat),
            (b"LIST", Command::List(None)),
            (b"LIST 2", Command::List(Some(2))),
            (b"LIST 2 ", Command::List(Some(2))),
            (b"RETR 01", Command::Retr(1)),
            (b"RETR 4294967295", Command::Retr(u32::MAX)),
            (b"DELE 1", Command::Dele(1)),
            (b"NOOP", Command::Noop),
            (b"RSET", Command::Rset),
            (b"QUIT", Command::Quit),
            (b"TOP 1 10", Command::Top { msg: 1, lines: 10 }),
            (
                b"TOP 5 4294967296",
                Command::Top {
                    msg: 5,
                    lines: 4_294_967_296,
                },
            ),
            (
                b"TOP 5 99999999999999999999999999",
                Command::Top {
                    msg: 5,
                    lines: u64::MAX,
                },
            ),
            (b"UIDL", Command::Uidl(None)),
            (b"UIDL 3", Command::Uidl(Some(3))),
            (b"CAPA", Command::Capa),
            (b"STLS", Command::Stls),
            (b"UTF8", Command::Utf8),
            (b"LANG", Command::Lang(None)),
            (b"LANG es", Command::Lang(Some("es"))),
            (b"USER j\xC3\xBCrgen", Command::User("j\u{fc}rgen")),
        ];
        for (line, expected) in table {
            assert_eq!(p(line), Ok(*expected), "{:?}", core::str::from_utf8(line));
        }
    }

    #[test]
    fn must_fail() {
        use CommandError::*;
        let table: &[(&[u8], CommandError)] = &[
            (b"FOO", UnknownCommand),
            (b"", UnknownCommand),
            (b"XTND XLST Message-Id", UnknownCommand),
            (b"LAST", UnknownCommand),
            (b"RPOP alice", UnknownCommand),
            (b"NOOP\rSTAT", UnknownCommand), // ROB-2: bare CR is no separator
            (b"RETR", MissingArgument),      // R1939-GEN-10
            (b"RETR x", InvalidNumber),
            (b"TOP 1", MissingArgument),
            (b"TOP 1 -1", InvalidNumber),
            (b"TOP 1 x", InvalidNumber),
            (b"STAT 1", TooManyArguments),
            (b"QUIT now", TooManyArguments),
            (b"LIST -1", InvalidNumber), // R1939-LIST-4
            (b"LIST 1x", InvalidNumber),
            (b"RETR +1", InvalidNumber), // ROB-5
            (b"RETR 0x1", InvalidNumber),
            (b"RETR 99999999999999999999", InvalidNumber),
            (b"RETR 4294967296", InvalidNumber),
            (b"LIST  1", InvalidArgument), // two SP: never read as LIST 1 or LIST
            (b"USER al\x00ice", InvalidArgument), // ROB-3
            (b"USER \xC3\x28", InvalidArgument), // R6856-UTF8-6
            (b"PASS", MissingArgument),
            (b"PASS ", MissingArgument),
            (b"PASS a\x00b", InvalidArgument),
            (b"APOP mrose", MissingArgument),
            (b"UTF8 x", TooManyArguments),
        ];
        for (line, expected) in table {
            assert_eq!(p(line), Err(*expected), "{:?}", line);
        }
    }

    #[test]
    fn every_proper_prefix_is_partial() {
        let lines: &[&[u8]] = &[
            b"USER alice\r\n",
            b"PASS pass word\r\n",
            b"TOP 1 10\r\n",
            b"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n",
            b"LIST\n",
        ];
        for line in lines {
            for n in 0..line.len() {
                assert_eq!(Command::parse(&line[..n]), Ok(Parsed::Partial));
            }
            let Ok(Parsed::Complete((len, _))) = Command::parse(line) else {
                panic!("{line:?} did not parse");
            };
            assert_eq!(len, line.len());
        }
    }

    #[test]
    fn parse_reports_only_the_first_line() {
        let input = b"NOOP\nSTAT\r\n";
        assert_eq!(
            Command::parse(input),
            Ok(Parsed::Complete((5, Command::Noop)))
        );
    }

    #[test]
    fn secret_is_not_printed() {
        let cmd = p(b"PASS tanstaaf").unwrap();
        let debug = alloc::format!("{cmd:?}");
        assert!(!debug.contains("tanstaaf"), "{debug}");
    }

    mod props {
        use alloc::string::String;

        use proptest::prelude::*;

        use super::*;

        fn word() -> impl Strategy<Value = String> {
            "[!-~]{1,40}"
        }

        fn command() -> impl Strategy<Value = OwnedCommand> {
            prop_oneof![
                word().prop_map(OwnedCommand::User),
                "[!-~][ -~]{0,60}".prop_map(|s| OwnedCommand::Pass(s.into_bytes())),
                (word(), "[0-9a-f]{32}").prop_map(|(n, d)| OwnedCommand::Apop(n, d)),
                Just(OwnedCommand::AuthList),
                (
                    "[A-Z0-9-]{1,20}",
                    proptest::option::of("[A-Za-z0-9+/]{1,100}={0,2}|=")
                )
                    .prop_map(|(m, ir)| OwnedCommand::Auth(m, ir)),
                any::<Option<u32>>().prop_map(OwnedCommand::List),
                any::<Option<u32>>().prop_map(OwnedCommand::Uidl),
                any::<u32>().prop_map(OwnedCommand::Retr),
                any::<u32>().prop_map(OwnedCommand::Dele),
                (any::<u32>(), any::<u64>()).prop_map(|(m, l)| OwnedCommand::Top(m, l)),
                proptest::option::of("[A-Za-z*-]{1,10}").prop_map(OwnedCommand::Lang),
                prop_oneof![
                    Just(OwnedCommand::Simple(Command::Stat)),
                    Just(OwnedCommand::Simple(Command::Noop)),
                    Just(OwnedCommand::Simple(Command::Rset)),
                    Just(OwnedCommand::Simple(Command::Quit)),
                    Just(OwnedCommand::Simple(Command::Capa)),
                    Just(OwnedCommand::Simple(Command::Stls)),
                    Just(OwnedCommand::Simple(Command::Utf8)),
                ],
            ]
        }

        #[derive(Debug, Clone)]
        enum OwnedCommand {
            User(String),
            Pass(Vec<u8>),
            Apop(String, String),
            AuthList,
            Auth(String, Option<String>),
            List(Option<u32>),
            Uidl(Option<u32>),
            Retr(u32),
            Dele(u32),
            Top(u32, u64),
            Lang(Option<String>),
            Simple(Command<'static>),
        }

        impl OwnedCommand {
            fn borrow(&self) -> Command<'_> {
                match self {
                    Self::User(u) => Command::User(u),
                    Self::Pass(p) => Command::Pass(Secret::new(p)),
                    Self::Apop(n, d) => Command::Apop { name: n, digest: d },
                    Self::AuthList => Command::AuthList,
                    Self::Auth(m, ir) => Command::Auth {
                        mechanism: m,
                        initial_response: ir.as_deref().map(|s| Secret::new(s.as_bytes())),
                    },
                    Self::List(n) => Command::List(*n),
                    Self::Uidl(n) => Command::Uidl(*n),
                    Self::Retr(n) => Command::Retr(*n),
                    Self::Dele(n) => Command::Dele(*n),
                    Self::Top(m, l) => Command::Top { msg: *m, lines: *l },
                    Self::Lang(l) => Command::Lang(l.as_deref()),
                    Self::Simple(c) => *c,
                }
            }
        }

        proptest! {
            #[test]
            fn encode_then_parse_is_identity(cmd in command()) {
                let cmd = cmd.borrow();
                let mut out = Vec::new();
                cmd.encode(&mut out);
                prop_assert!(out.ends_with(b"\r\n"));
                let parsed = Command::parse(&out);
                prop_assert_eq!(parsed, Ok(Parsed::Complete((out.len(), cmd))));
            }

            #[test]
            fn parse_then_encode_then_parse_is_stable(line in proptest::collection::vec(any::<u8>(), 0..80)) {
                if let Ok(cmd) = Command::parse_line(&line) {
                    let mut out = Vec::new();
                    cmd.encode(&mut out);
                    prop_assert_eq!(Command::parse(&out), Ok(Parsed::Complete((out.len(), cmd))));
                }
            }
        }
    }
}
