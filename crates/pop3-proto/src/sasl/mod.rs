//! SASL in POP3 (RFC 5034): mechanism names and the line framing both sides share.
//!
//! The framing: `AUTH mech [initial-response]`, where the initial response is base64 or `=`
//! for an empty one; challenges are `+ base64`; each client answer is one base64 line, an
//! empty line for empty data, or `*` to cancel. Base64 is checked strictly (RFC 5034 §4: no
//! characters outside the alphabet, `=` only as final padding), so `=AAA`, `AAA=BBB` and
//! embedded spaces are rejected rather than skipped.

use alloc::vec::Vec;
use core::fmt;

use base64::Engine as _;

/// SASL mechanisms this crate knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// `PLAIN` (RFC 4616): client-first, sends the password.
    Plain,
    /// `LOGIN` (draft-murchison-sasl-login): server challenges for user, then password.
    Login,
    /// `CRAM-MD5` (RFC 2195): server-first challenge–response.
    CramMd5,
    /// `SCRAM-SHA-1` (RFC 5802).
    ScramSha1,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `OAUTHBEARER` (RFC 7628).
    OAuthBearer,
    /// `XOAUTH2` (Google, Microsoft).
    XOAuth2,
    /// `EXTERNAL` (RFC 4422 Appendix A): identity from the TLS client certificate.
    External,
}

/// Who speaks first in a mechanism, which decides what the server does with `AUTH mech`
/// without an initial response (RFC 4422 §5, RFC 5034 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstMessage {
    /// The client's message comes first: without an initial response the server sends an
    /// empty challenge `+ ` and waits for it.
    Client,
    /// The server challenges first: an initial response is a protocol error.
    Server,
    /// LOGIN: the server challenges first, but clients commonly send the user name as an
    /// initial response (checklist RLOGIN-6), which is accepted.
    Either,
}

impl Mechanism {
    /// Every mechanism, strongest first (the order a client prefers them in).
    pub const ALL: [Self; 8] = [
        Self::ScramSha256,
        Self::ScramSha1,
        Self::OAuthBearer,
        Self::XOAuth2,
        Self::External,
        Self::CramMd5,
        Self::Plain,
        Self::Login,
    ];

    /// The IANA name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Login => "LOGIN",
            Self::CramMd5 => "CRAM-MD5",
            Self::ScramSha1 => "SCRAM-SHA-1",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::OAuthBearer => "OAUTHBEARER",
            Self::XOAuth2 => "XOAUTH2",
            Self::External => "EXTERNAL",
        }
    }

    /// Looks a name up, case-insensitively (RFC 5034 §5).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// Who speaks first.
    pub const fn first_message(self) -> FirstMessage {
        match self {
            Self::CramMd5 => FirstMessage::Server,
            Self::Login => FirstMessage::Either,
            _ => FirstMessage::Client,
        }
    }

    /// True when the mechanism hands the server a reusable secret: the password (PLAIN,
    /// LOGIN) or a bearer token (OAUTHBEARER, XOAUTH2). Such mechanisms are offered only
    /// over TLS by default (RFC 5034 §4, RFC 7628 §3).
    pub const fn sends_plaintext_secret(self) -> bool {
        matches!(
            self,
            Self::Plain | Self::Login | Self::OAuthBearer | Self::XOAuth2
        )
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a SASL line was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaslError {
    /// Not strict base64 (RFC 5034 §4).
    InvalidBase64,
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidBase64 => f.write_str("invalid base64"),
        }
    }
}

impl core::error::Error for SaslError {}

/// One line a client sends during an exchange, or its initial response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientLine {
    /// `*`: the client cancels.
    Cancel,
    /// Data, decoded into the caller's buffer.
    Data,
}

/// Decodes a client continuation line into `out` (cleared first). An empty line is empty
/// data; `*` cancels.
pub fn decode_client_line(line: &[u8], out: &mut Vec<u8>) -> Result<ClientLine, SaslError> {
    out.clear();
    if line == b"*" {
        return Ok(ClientLine::Cancel);
    }
    decode_base64(line, out)?;
    Ok(ClientLine::Data)
}

/// Decodes an initial response (`=` is present-but-empty, RFC 5034 §4) into `out`.
pub fn decode_initial_response(ir: &[u8], out: &mut Vec<u8>) -> Result<(), SaslError> {
    out.clear();
    if ir == b"=" {
        return Ok(());
    }
    if ir.is_empty() {
        return Err(SaslError::InvalidBase64);
    }
    decode_base64(ir, out)
}

fn decode_base64(text: &[u8], out: &mut Vec<u8>) -> Result<(), SaslError> {
    base64::engine::general_purpose::STANDARD
        .decode_vec(text, out)
        .map_err(|_| SaslError::InvalidBase64)
}

/// Appends `data` as base64 (no line breaks).
pub fn encode_base64(data: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let len = base64::encoded_len(data.len(), true).unwrap_or(0);
    out.resize(start + len, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(data, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
}

/// Appends a challenge line `+ base64\r\n`; empty data gives exactly `+ \r\n` (R5034-AUTH-6).
pub fn encode_challenge(data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"+ ");
    encode_base64(data, out);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;

    #[test]
    fn strict_base64_r5034_auth_12() {
        let mut out = Vec::new();
        for bad in [
            &b"=AAA"[..],
            b"AAA=BBB",
            b"AHRp bQ==",
            b"AHRpbQ==\t",
            b"!!!!",
            b"AHRpbQ",
        ] {
            assert_eq!(
                decode_client_line(bad, &mut out),
                Err(SaslError::InvalidBase64),
                "{bad:?}"
            );
        }
        assert_eq!(
            decode_client_line(b"AHRpbQ==", &mut out),
            Ok(ClientLine::Data)
        );
        assert_eq!(out, b"\0tim");
    }

    #[test]
    fn empty_cancel_and_equals() {
        let mut out = alloc::vec![1];
        assert_eq!(decode_client_line(b"", &mut out), Ok(ClientLine::Data));
        assert!(out.is_empty());
        assert_eq!(decode_client_line(b"*", &mut out), Ok(ClientLine::Cancel));
        assert_eq!(decode_initial_response(b"=", &mut out), Ok(()));
        assert!(out.is_empty());
        assert!(decode_initial_response(b"", &mut out).is_err());
    }

    #[test]
    fn challenge_encoding() {
        let mut out = Vec::new();
        encode_challenge(b"", &mut out);
        assert_eq!(out, b"+ \r\n");
        out.clear();
        encode_challenge(b"<1896.697170952@postoffice.reston.mci.net>", &mut out);
        assert_eq!(
            out,
            b"+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"
        );
    }

    #[test]
    fn names_are_case_insensitive() {
        assert_eq!(
            Mechanism::from_name("scram-sha-256"),
            Some(Mechanism::ScramSha256)
        );
        assert_eq!(Mechanism::from_name("FOOBAR"), None);
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
        }
    }
}
