//! OAUTHBEARER (RFC 7628) and XOAUTH2 (Google, Microsoft): a bearer token in one client
//! message; on a bad token the server sends an error JSON as a challenge, the client
//! answers with a dummy (`%x01` for OAUTHBEARER, empty for XOAUTH2) and the server fails.

use alloc::{string::String, vec::Vec};

use super::{
    Exchange, Next, SaslError,
    plain::prepare_authzid,
    scram::{parse_gs2_header, push_saslname},
};
use crate::{Secret, fmt::push_u64};

/// `kvsep` (RFC 7628 §3.1).
const KVSEP: u8 = 0x01;

/// Which of the two token mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    OAuthBearer,
    XOAuth2,
}

impl Kind {
    /// The dummy answer to an error challenge (R7628-5, XOA2-2).
    const fn error_ack(self) -> &'static [u8] {
        match self {
            Self::OAuthBearer => &[KVSEP],
            Self::XOAuth2 => b"",
        }
    }
}

/// XOAUTH2: `user=U ^A auth=Bearer T ^A ^A` (XOA2-1).
pub(super) fn xoauth2_message(user: &str, token: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(user.len() + token.len() + 21);
    m.extend_from_slice(b"user=");
    m.extend_from_slice(user.as_bytes());
    m.extend_from_slice(b"\x01auth=Bearer ");
    m.extend_from_slice(token.as_bytes());
    m.extend_from_slice(b"\x01\x01");
    m
}

/// OAUTHBEARER: `n,[a=authzid], ^A [host=H ^A] [port=P ^A] auth=Bearer T ^A ^A` (R7628-2).
pub(super) fn oauthbearer_message(
    authzid: Option<&str>,
    token: &str,
    host: Option<&str>,
    port: Option<u16>,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(token.len() + 64);
    m.extend_from_slice(b"n,");
    if let Some(authzid) = authzid {
        m.extend_from_slice(b"a=");
        push_saslname(authzid, &mut m);
    }
    m.push(b',');
    m.push(KVSEP);
    if let Some(host) = host {
        m.extend_from_slice(b"host=");
        m.extend_from_slice(host.as_bytes());
        m.push(KVSEP);
    }
    if let Some(port) = port {
        m.extend_from_slice(b"port=");
        push_u64(&mut m, u64::from(port));
        m.push(KVSEP);
    }
    m.extend_from_slice(b"auth=Bearer ");
    m.extend_from_slice(token.as_bytes());
    m.push(KVSEP);
    m.push(KVSEP);
    m
}

/// The client half of both.
pub(super) struct Client {
    pub(super) kind: Kind,
    pub(super) message: Secret<Vec<u8>>,
    pub(super) sent: bool,
    pub(super) resent: bool,
    /// The error JSON the server sent, if any.
    pub(super) error: Option<Vec<u8>>,
}

impl Client {
    pub(super) fn new(kind: Kind, message: Vec<u8>) -> Self {
        Self {
            kind,
            message: Secret::new(message),
            sent: false,
            resent: false,
            error: None,
        }
    }

    pub(super) fn initial_response(&mut self) -> Vec<u8> {
        self.sent = true;
        self.message.expose().clone()
    }

    pub(super) fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        if self.error.is_some() {
            return Err(SaslError::MalformedChallenge);
        }
        if challenge.is_empty() {
            if self.resent {
                return Err(SaslError::MalformedChallenge);
            }
            self.resent = true;
            return Ok(self.initial_response());
        }
        // Any data from the server is the error JSON (R7628-5, XOA2-2).
        self.error = Some(challenge.to_vec());
        Ok(self.kind.error_ack().to_vec())
    }

    pub(super) const fn finish(&self) -> Result<(), SaslError> {
        if self.error.is_some() {
            Err(SaslError::ServerError)
        } else if !self.sent {
            Err(SaslError::Incomplete)
        } else {
            Ok(())
        }
    }
}

/// What the server knows to check `host` and `port` against (R7628-4).
pub(super) struct Expect<'a> {
    /// Empty: not checked.
    pub(super) host: &'a str,
    pub(super) port: Option<u16>,
}

/// Parses `*kvpair kvsep` (RFC 7628 §3.1): `key = 1*ALPHA`, `value = *(VCHAR / SP / HTAB /
/// CR / LF)`. Calls `each` for every pair, unknown keys included.
fn kv_pairs<'a>(
    mut data: &'a [u8],
    mut each: impl FnMut(&'a [u8], &'a [u8]) -> Result<(), SaslError>,
) -> Result<(), SaslError> {
    loop {
        match data {
            [KVSEP] => return Ok(()),
            [] => return Err(SaslError::MalformedResponse),
            _ => {}
        }
        let end = data
            .iter()
            .position(|&b| b == KVSEP)
            .ok_or(SaslError::MalformedResponse)?;
        let pair = &data[..end];
        let eq = pair
            .iter()
            .position(|&b| b == b'=')
            .ok_or(SaslError::MalformedResponse)?;
        let (key, value) = (&pair[..eq], &pair[eq + 1..]);
        let value_ok = value
            .iter()
            .all(|&b| matches!(b, 0x21..=0x7e | b' ' | b'\t' | b'\r' | b'\n'));
        if key.is_empty() || !key.iter().all(u8::is_ascii_alphabetic) || !value_ok {
            return Err(SaslError::MalformedResponse);
        }
        each(key, value)?;
        data = &data[end + 1..];
    }
}

/// The token of an `auth` value `Bearer 1*SP b64token` (scheme case-insensitive, RFC 7628
/// §4). An empty `auth` gives an empty token: a discovery request the application rejects
/// with an error JSON (RFC 7628 §4.4 example).
fn bearer_token(auth: &[u8]) -> Result<&[u8], SaslError> {
    if auth.is_empty() {
        return Ok(auth);
    }
    let (scheme, rest) = auth.split_at(auth.len().min(6));
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
        return Err(SaslError::UnsupportedScheme);
    }
    let token = rest.trim_ascii_start();
    // b64token (RFC 6750 §2.1): 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body_len = token
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)))
        .unwrap_or(token.len());
    let (body, pad) = token.split_at(body_len);
    if body.is_empty() || !pad.iter().all(|&b| b == b'=') {
        return Err(SaslError::MalformedResponse);
    }
    Ok(token)
}

/// `port`: a decimal positive integer without leading zeros.
fn parse_port(value: &[u8]) -> Option<u16> {
    if value.first().is_none_or(|&d| d == b'0') || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    core::str::from_utf8(value).ok()?.parse().ok()
}

/// Parses a client message into `ex` (authzid, user, secret = token).
pub(super) fn server_message(
    kind: Kind,
    msg: &[u8],
    expect: &Expect<'_>,
    ex: &mut Exchange,
) -> Result<Next, SaslError> {
    let mut auth = None;
    let mut user: Option<&[u8]> = None;
    match kind {
        Kind::OAuthBearer => {
            if msg == [KVSEP] {
                // R7628-6: the error-completion message sent first: no one to check.
                return Ok(Next::Failure);
            }
            let header = parse_gs2_header(msg)?;
            let [KVSEP, pairs @ ..] = header.rest else {
                return Err(SaslError::MalformedResponse);
            };
            kv_pairs(pairs, |key, value| {
                match key {
                    b"auth" => auth = Some(value),
                    b"host"
                        if !expect.host.is_empty()
                            && !value.eq_ignore_ascii_case(expect.host.as_bytes()) =>
                    {
                        return Err(SaslError::HostMismatch);
                    }
                    b"port" => {
                        let port = parse_port(value).ok_or(SaslError::MalformedResponse)?;
                        if expect.port.is_some_and(|p| p != port) {
                            return Err(SaslError::HostMismatch);
                        }
                    }
                    // Unknown keys are ignored (R7628-3).
                    _ => {}
                }
                Ok(())
            })?;
            ex.authzid = match header.authzid {
                Some(a) => prepare_authzid(a.as_bytes())?,
                None => String::new(),
            };
            ex.user.clone_from(&ex.authzid);
        }
        Kind::XOAuth2 => {
            kv_pairs(msg, |key, value| {
                match key {
                    b"auth" => auth = Some(value),
                    b"user" => user = Some(value),
                    _ => {}
                }
                Ok(())
            })?;
            let user = user.ok_or(SaslError::MalformedResponse)?;
            let user = core::str::from_utf8(user).map_err(|_| SaslError::InvalidUtf8)?;
            if user.is_empty() {
                return Err(SaslError::EmptyString);
            }
            ex.authzid.clear();
            ex.user = String::from(user);
        }
    }
    let token = bearer_token(auth.ok_or(SaslError::MalformedResponse)?)?;
    ex.secret.clear();
    ex.secret.extend_from_slice(token);
    Ok(Next::CheckToken)
}

/// Where the server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Server {
    AwaitFirst,
    /// The token was handed to the application; it may reject it with an error JSON.
    Checking,
    /// The error JSON went out; waiting for the dummy answer.
    AwaitErrorAck,
    Done,
}

impl Server {
    pub(super) fn step(
        &mut self,
        kind: Kind,
        response: &[u8],
        expect: &Expect<'_>,
        ex: &mut Exchange,
    ) -> Result<Next, SaslError> {
        match *self {
            Self::AwaitFirst => {
                *self = Self::Done;
                let next = server_message(kind, response, expect, ex)?;
                if next == Next::CheckToken {
                    *self = Self::Checking;
                }
                Ok(next)
            }
            Self::AwaitErrorAck => {
                // Whatever the client answers (the dummy, ideally), the exchange fails.
                *self = Self::Done;
                Ok(Next::Failure)
            }
            Self::Checking | Self::Done => Err(SaslError::OutOfSequence),
        }
    }

    pub(super) fn token_rejected(
        &mut self,
        error_json: &[u8],
        ex: &mut Exchange,
    ) -> Result<Next, SaslError> {
        if *self != Self::Checking {
            return Err(SaslError::OutOfSequence);
        }
        *self = Self::AwaitErrorAck;
        ex.secret.clear();
        ex.challenge.clear();
        ex.challenge.extend_from_slice(error_json);
        if ex.challenge.is_empty() {
            // An empty challenge would read as "send your message"; send a minimal error.
            ex.challenge
                .extend_from_slice(br#"{"status":"invalid_token"}"#);
        }
        Ok(Next::Challenge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::{decode_base64, encode_base64};

    fn b64(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_base64(data, &mut out);
        out
    }

    const EXPECT: Expect<'static> = Expect {
        host: "127.0.0.1",
        port: Some(9001),
    };

    #[test]
    fn curl_vector_r7628_2() {
        let m = oauthbearer_message(
            Some("user"),
            "mF_9.B5f-4.1JqM",
            Some("127.0.0.1"),
            Some(9001),
        );
        assert_eq!(
            m,
            b"n,a=user,\x01host=127.0.0.1\x01port=9001\x01auth=Bearer mF_9.B5f-4.1JqM\x01\x01"
        );
        assert_eq!(
            b64(&m),
            &b"bixhPXVzZXIsAWhvc3Q9MTI3LjAuMC4xAXBvcnQ9OTAwMQFhdXRoPUJlYXJlciBtRl85LkI1Zi00LjFKcU0BAQ=="[..]
        );
        let mut ex = Exchange::default();
        assert_eq!(
            server_message(Kind::OAuthBearer, &m, &EXPECT, &mut ex),
            Ok(Next::CheckToken)
        );
        assert_eq!(ex.user, "user");
        assert_eq!(ex.secret, b"mF_9.B5f-4.1JqM");
    }

    #[test]
    fn rfc7628_section_4_1_example() {
        let mut m = Vec::new();
        decode_base64(
            b"bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB",
            &mut m,
        )
        .unwrap();
        let expect = Expect {
            host: "SERVER.example.com",
            port: Some(143),
        };
        let mut ex = Exchange::default();
        assert_eq!(
            server_message(Kind::OAuthBearer, &m, &expect, &mut ex),
            Ok(Next::CheckToken)
        );
        assert_eq!(ex.user, "user@example.com");
        assert_eq!(ex.secret, b"vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
        assert_eq!(
            m,
            oauthbearer_message(
                Some("user@example.com"),
                "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
                Some("server.example.com"),
                Some(143)
            )
        );
    }

    #[test]
    fn google_vector_xoa2_1() {
        let m = xoauth2_message(
            "someuser@example.com",
            "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
        );
        assert_eq!(
            b64(&m),
            &b"dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="[..]
        );
        let mut ex = Exchange::default();
        assert_eq!(
            server_message(Kind::XOAuth2, &m, &EXPECT, &mut ex),
            Ok(Next::CheckToken)
        );
        assert_eq!(ex.user, "someuser@example.com");
        assert_eq!(ex.secret, b"ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg");
    }

    #[test]
    fn server_parsing_r7628_3_4_6() {
        let ok: &[&[u8]] = &[
            b"n,,\x01auth=Bearer tok\x01\x01",
            b"y,,\x01foo=bar\x01auth=bearer tok\x01\x01",
            b"n,,\x01auth=BEARER  tok==\x01mthd=POST\x01\x01",
            b"n,,\x01host=127.0.0.1\x01auth=Bearer t\x01\x01",
            b"n,,\x01auth=\x01\x01",
        ];
        for &m in ok {
            let mut ex = Exchange::default();
            assert_eq!(
                server_message(Kind::OAuthBearer, m, &EXPECT, &mut ex),
                Ok(Next::CheckToken),
                "{:?}",
                m.escape_ascii()
            );
        }
        let bad: &[(&[u8], Result<Next, SaslError>)] = &[
            (b"\x01", Ok(Next::Failure)),
            (
                b"n,,\x01host=evil.example\x01auth=Bearer t\x01\x01",
                Err(SaslError::HostMismatch),
            ),
            (
                b"n,,\x01port=143\x01auth=Bearer t\x01\x01",
                Err(SaslError::HostMismatch),
            ),
            (
                b"n,,\x01port=09001\x01auth=Bearer t\x01\x01",
                Err(SaslError::MalformedResponse),
            ),
            (
                b"n,,\x01auth=Bearer t\x01",
                Err(SaslError::MalformedResponse),
            ),
            (b"n,,\x01auth=Bearer t", Err(SaslError::MalformedResponse)),
            (
                b"n,,auth=Bearer t\x01\x01",
                Err(SaslError::MalformedResponse),
            ),
            (b"n,,\x01foo=bar\x01\x01", Err(SaslError::MalformedResponse)),
            (
                b"n,,\x01auth=OAuth realm=x\x01\x01",
                Err(SaslError::UnsupportedScheme),
            ),
            (
                b"n,,\x01auth=Bearer\x01\x01",
                Err(SaslError::UnsupportedScheme),
            ),
            (
                b"n,,\x01auth=Bearer a b\x01\x01",
                Err(SaslError::MalformedResponse),
            ),
            (
                b"n,,\x01au1th=x\x01auth=Bearer t\x01\x01",
                Err(SaslError::MalformedResponse),
            ),
            (
                b"n,,\x01auth=Bearer t\x00\x01\x01",
                Err(SaslError::MalformedResponse),
            ),
            (
                b"p=tls-unique,,\x01auth=Bearer t\x01\x01",
                Err(SaslError::ChannelBindingNotSupported),
            ),
            (
                b"n,,\x01auth=Bearer t\x01\x01extra",
                Err(SaslError::MalformedResponse),
            ),
        ];
        for &(m, ref want) in bad {
            let mut ex = Exchange::default();
            assert_eq!(
                &server_message(Kind::OAuthBearer, m, &EXPECT, &mut ex),
                want,
                "{:?}",
                m.escape_ascii()
            );
        }
        for m in [
            &b"auth=Bearer t\x01\x01"[..],
            b"user=\x01auth=Bearer t\x01\x01",
            b"user=a\x01\x01",
        ] {
            let mut ex = Exchange::default();
            assert!(
                server_message(Kind::XOAuth2, m, &EXPECT, &mut ex).is_err(),
                "{:?}",
                m.escape_ascii()
            );
        }
    }

    #[test]
    fn client_error_flow_r7628_5_xoa2_2() {
        let json = br#"{"status":"invalid_token"}"#;
        assert_eq!(b64(json), b"eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=");
        let mut c = Client::new(
            Kind::OAuthBearer,
            oauthbearer_message(None, "t", None, None),
        );
        assert_eq!(c.respond(b"").unwrap(), b"n,,\x01auth=Bearer t\x01\x01");
        assert_eq!(c.respond(json).unwrap(), b"\x01");
        assert_eq!(c.error.as_deref(), Some(&json[..]));
        assert_eq!(c.finish(), Err(SaslError::ServerError));
        assert!(c.respond(json).is_err());

        let mut x = Client::new(Kind::XOAuth2, xoauth2_message("u", "t"));
        x.initial_response();
        assert_eq!(x.finish(), Ok(()));
        let google =
            br#"{"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}"#;
        assert_eq!(x.respond(google).unwrap(), b"");
        assert_eq!(x.finish(), Err(SaslError::ServerError));
    }

    #[test]
    fn server_error_flow() {
        let mut s = Server::AwaitFirst;
        let mut ex = Exchange::default();
        assert_eq!(
            s.token_rejected(b"{}", &mut ex),
            Err(SaslError::OutOfSequence)
        );
        assert_eq!(
            s.step(
                Kind::OAuthBearer,
                b"n,,\x01auth=Bearer t\x01\x01",
                &EXPECT,
                &mut ex
            ),
            Ok(Next::CheckToken)
        );
        assert_eq!(
            s.step(Kind::OAuthBearer, b"\x01", &EXPECT, &mut ex),
            Err(SaslError::OutOfSequence)
        );
        assert_eq!(s.token_rejected(b"", &mut ex), Ok(Next::Challenge));
        assert_eq!(ex.challenge, br#"{"status":"invalid_token"}"#);
        assert!(ex.secret.is_empty());
        assert_eq!(
            s.step(Kind::OAuthBearer, b"\x01", &EXPECT, &mut ex),
            Ok(Next::Failure)
        );
        assert!(
            s.step(Kind::OAuthBearer, b"\x01", &EXPECT, &mut ex)
                .is_err()
        );
    }
}
