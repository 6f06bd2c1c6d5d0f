//! SCRAM-SHA-1 (RFC 5802) and SCRAM-SHA-256 (RFC 7677), without channel binding.
//!
//! The server never needs the password: it works from [`ScramCredentials`] (salt, iteration
//! count, `StoredKey`, `ServerKey`), the form Dovecot stores as `{SCRAM-SHA-256}`. No `-PLUS`
//! variant exists, so a client asking for channel binding (`p=`) is refused and `y` is
//! accepted (R5802-10).
//!
//! ```
//! use pop3_proto::sasl::scram::{ScramCredentials, ScramHash};
//! let salt = [0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
//!             0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81];
//! let creds = ScramCredentials::derive(ScramHash::Sha256, "pencil", &salt, 4096).unwrap();
//! assert_eq!(creds.stored_key.len(), 32);
//! ```

use alloc::{string::String, vec::Vec};
use core::fmt;

use hmac::{EagerHash, Hmac, KeyInit as _, Mac as _};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::{
    Exchange, Mechanism, Next, SaslError, ct_eq, decode_base64, encode_base64,
    plain::prepare_authzid, saslprep::saslprep,
};
use crate::Secret;

/// The smallest iteration count [`ScramCredentials::derive`] accepts (RFC 7677 §4,
/// R5802-5).
pub const MIN_ITERATIONS: u32 = 4096;

/// The largest iteration count a client accepts from a server, so a hostile server cannot
/// make it compute for minutes (about 4 million).
pub const MAX_ITERATIONS: u32 = 1 << 22;

/// The hash of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScramHash {
    /// SHA-1 (SCRAM-SHA-1, RFC 5802).
    Sha1,
    /// SHA-256 (SCRAM-SHA-256, RFC 7677).
    Sha256,
}

impl ScramHash {
    /// The hash of a SCRAM mechanism, `None` for the others.
    pub const fn from_mechanism(mechanism: Mechanism) -> Option<Self> {
        match mechanism {
            Mechanism::ScramSha1 => Some(Self::Sha1),
            Mechanism::ScramSha256 => Some(Self::Sha256),
            _ => None,
        }
    }

    /// The mechanism using this hash.
    pub const fn mechanism(self) -> Mechanism {
        match self {
            Self::Sha1 => Mechanism::ScramSha1,
            Self::Sha256 => Mechanism::ScramSha256,
        }
    }

    /// Output length in octets: the length of keys, proofs and signatures.
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Self::Sha1 => hmac_with::<Sha1>(key, parts),
            Self::Sha256 => hmac_with::<Sha256>(key, parts),
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => Sha1::digest(data).to_vec(),
            Self::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    /// `Hi()` of RFC 5802 §2.2: PBKDF2 with HMAC and one output block.
    fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = alloc::vec![0u8; self.output_len()];
        let done = match self {
            Self::Sha1 => pbkdf2::pbkdf2::<Hmac<Sha1>>(password, salt, iterations, &mut out),
            Self::Sha256 => pbkdf2::pbkdf2::<Hmac<Sha256>>(password, salt, iterations, &mut out),
        };
        // HMAC takes keys of any length, so this cannot fail; if it did, the all-zero key
        // would match nothing.
        if done.is_err() {
            out.fill(0);
        }
        out
    }
}

fn hmac_with<D: EagerHash>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let Ok(mut mac) = Hmac::<D>::new_from_slice(key) else {
        return Vec::new();
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn xor_in_place(a: &mut [u8], b: &[u8]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= y;
    }
}

/// What a server stores per user for SCRAM: never the password.
///
/// `Debug` shows the salt and the iteration count only.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    /// The salt (raw octets, not base64).
    pub salt: Vec<u8>,
    /// The iteration count.
    pub iterations: u32,
    /// `StoredKey = H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Vec<u8>,
    /// `ServerKey = HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

impl fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("salt", &self.salt)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredentials {
    /// Derives the stored form from a password: SASLprep (RFC 5802 §2.2 `Normalize`), then
    /// `Hi(password, salt, iterations)`. For daemons setting passwords and for tests; the
    /// `salt` should be 16 or more random octets.
    ///
    /// Errors: [`SaslError::InvalidIterationCount`] below [`MIN_ITERATIONS`],
    /// [`SaslError::InvalidCredentials`] for an empty salt, and the SASLprep errors.
    pub fn derive(
        hash: ScramHash,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, SaslError> {
        if iterations < MIN_ITERATIONS {
            return Err(SaslError::InvalidIterationCount);
        }
        if salt.is_empty() {
            return Err(SaslError::InvalidCredentials);
        }
        let password = saslprep(password)?;
        let salted = hash.hi(password.as_bytes(), salt, iterations);
        Ok(Self::from_salted(hash, &salted, salt.to_vec(), iterations))
    }

    fn from_salted(hash: ScramHash, salted: &[u8], salt: Vec<u8>, iterations: u32) -> Self {
        let client_key = hash.hmac(salted, &[b"Client Key"]);
        Self {
            salt,
            iterations,
            stored_key: hash.hash(&client_key),
            server_key: hash.hmac(salted, &[b"Server Key"]),
        }
    }

    fn check(&self, hash: ScramHash) -> Result<(), SaslError> {
        let n = hash.output_len();
        if self.iterations == 0
            || self.salt.is_empty()
            || self.stored_key.len() != n
            || self.server_key.len() != n
        {
            return Err(SaslError::InvalidCredentials);
        }
        Ok(())
    }
}

/// `printable` of RFC 5802 §7: `%x21-2B / %x2D-7E`, at least one.
fn is_printable_nonce(nonce: &[u8]) -> bool {
    !nonce.is_empty() && nonce.iter().all(|&b| matches!(b, 0x21..=0x7e) && b != b',')
}

/// The server's nonce part from the adapter's random bytes: used as they are when they are
/// printable without `,`, else base64-encoded (whose alphabet is).
pub(super) fn server_nonce(random: &[u8]) -> Vec<u8> {
    if is_printable_nonce(random) {
        random.to_vec()
    } else {
        let mut out = Vec::new();
        encode_base64(random, &mut out);
        out
    }
}

/// Appends `name` as a `saslname`: `,` as `=2C`, `=` as `=3D` (RFC 5802 §5.1).
pub(super) fn push_saslname(name: &str, out: &mut Vec<u8>) {
    for &b in name.as_bytes() {
        match b {
            b',' => out.extend_from_slice(b"=2C"),
            b'=' => out.extend_from_slice(b"=3D"),
            _ => out.push(b),
        }
    }
}

/// Decodes a `saslname` (R5802-2): `=2C` and `=3D` only; no NUL; UTF-8; not empty.
pub(super) fn decode_saslname(raw: &[u8]) -> Result<String, SaslError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((&b, tail)) = rest.split_first() {
        match b {
            b'=' => match tail {
                [b'2', b'C', more @ ..] => {
                    out.push(b',');
                    rest = more;
                }
                [b'3', b'D', more @ ..] => {
                    out.push(b'=');
                    rest = more;
                }
                _ => return Err(SaslError::InvalidUsernameEncoding),
            },
            0 | b',' => return Err(SaslError::InvalidUsernameEncoding),
            _ => {
                out.push(b);
                rest = tail;
            }
        }
    }
    if out.is_empty() {
        return Err(SaslError::InvalidUsernameEncoding);
    }
    String::from_utf8(out).map_err(|_| SaslError::InvalidUsernameEncoding)
}

/// A parsed GS2 header (RFC 5801, as SCRAM and OAUTHBEARER use it).
pub(super) struct Gs2Header<'a> {
    /// `a=` decoded; `None` when absent.
    pub(super) authzid: Option<String>,
    /// The header as sent, both commas included.
    pub(super) raw: &'a [u8],
    /// What follows the header.
    pub(super) rest: &'a [u8],
}

/// Parses `("n" / "y" / "p=" cb-name) "," ["a=" saslname] ","`. `p=` fails: channel
/// binding is not implemented (R5802-1, R5802-10).
pub(super) fn parse_gs2_header(msg: &[u8]) -> Result<Gs2Header<'_>, SaslError> {
    let after_flag = match msg {
        [b'n' | b'y', b',', ..] => 2,
        [b'p', b'=', ..] => return Err(SaslError::ChannelBindingNotSupported),
        _ => return Err(SaslError::MalformedResponse),
    };
    let tail = &msg[after_flag..];
    let comma = tail
        .iter()
        .position(|&b| b == b',')
        .ok_or(SaslError::MalformedResponse)?;
    let authzid = match &tail[..comma] {
        [] => None,
        [b'a', b'=', name @ ..] => Some(decode_saslname(name)?),
        _ => return Err(SaslError::MalformedResponse),
    };
    let end = after_flag + comma + 1;
    Ok(Gs2Header {
        authzid,
        raw: &msg[..end],
        rest: &msg[end..],
    })
}

/// Splits `attr=value` pairs on `,`.
fn attributes(msg: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    msg.split(|&b| b == b',').map(|part| match part {
        [name, b'=', value @ ..] if name.is_ascii_alphabetic() => (*name, value),
        // Not an attribute: a name no attribute has, so every lookup fails.
        _ => (0, part),
    })
}

/// `posit-number` (RFC 5802 §7) as u32.
fn parse_positive(digits: &[u8]) -> Option<u32> {
    if digits.first().is_none_or(|&d| d == b'0') || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u32, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

// ---- client --------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum ClientPhase {
    /// Waiting for server-first (the client-first message may or may not be sent yet).
    AwaitServerFirst,
    /// Client-final sent; the expected server signature.
    AwaitServerFinal(Vec<u8>),
    Verified,
    Failed,
}

/// The client half.
pub(super) struct Client {
    hash: ScramHash,
    password: Secret<String>,
    client_first_bare: Vec<u8>,
    nonce_len: usize,
    phase: ClientPhase,
    resent: bool,
}

/// The GS2 header this client sends: no channel binding, no authzid.
const CLIENT_GS2_HEADER: &[u8] = b"n,,";

impl Client {
    /// `user` and `password` are prepared with SASLprep; the nonce must be printable ASCII
    /// without `,` (RFC 5802 §7).
    pub(super) fn new(
        hash: ScramHash,
        user: &str,
        password: &str,
        client_nonce: &[u8],
    ) -> Result<Self, SaslError> {
        if !is_printable_nonce(client_nonce) {
            return Err(SaslError::InvalidNonce);
        }
        let user = saslprep(user)?;
        if user.is_empty() {
            return Err(SaslError::EmptyString);
        }
        let password = saslprep(password)?;
        let mut bare = Vec::with_capacity(user.len() + client_nonce.len() + 8);
        bare.extend_from_slice(b"n=");
        push_saslname(&user, &mut bare);
        bare.extend_from_slice(b",r=");
        bare.extend_from_slice(client_nonce);
        Ok(Self {
            hash,
            password: Secret::new(String::from(password)),
            client_first_bare: bare,
            nonce_len: client_nonce.len(),
            phase: ClientPhase::AwaitServerFirst,
            resent: false,
        })
    }

    fn client_nonce(&self) -> &[u8] {
        let start = self.client_first_bare.len().saturating_sub(self.nonce_len);
        self.client_first_bare.get(start..).unwrap_or_default()
    }

    pub(super) fn initial_response(&self) -> Vec<u8> {
        let mut m = CLIENT_GS2_HEADER.to_vec();
        m.extend_from_slice(&self.client_first_bare);
        m
    }

    pub(super) const fn phase_name(&self) -> &'static str {
        match self.phase {
            ClientPhase::AwaitServerFirst => "await-server-first",
            ClientPhase::AwaitServerFinal(_) => "await-server-final",
            ClientPhase::Verified => "verified",
            ClientPhase::Failed => "failed",
        }
    }

    pub(super) fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        let result = self.respond_inner(challenge);
        if result.is_err() {
            self.phase = ClientPhase::Failed;
        }
        result
    }

    fn respond_inner(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        match &self.phase {
            ClientPhase::AwaitServerFirst if challenge.is_empty() && !self.resent => {
                // The initial response was not sent inline: the server asks for it.
                self.resent = true;
                Ok(self.initial_response())
            }
            ClientPhase::AwaitServerFirst => self.client_final(challenge),
            ClientPhase::AwaitServerFinal(expected) => {
                let mut attrs = attributes(challenge);
                match attrs.next() {
                    Some((b'v', sig)) => {
                        let mut got = Vec::new();
                        decode_base64(sig, &mut got).map_err(|_| SaslError::MalformedChallenge)?;
                        if !ct_eq(&got, expected) {
                            return Err(SaslError::ServerSignatureMismatch);
                        }
                        self.phase = ClientPhase::Verified;
                        // RFC 5034 §4: final data came as a challenge; answer empty.
                        Ok(Vec::new())
                    }
                    Some((b'e', _)) => Err(SaslError::ServerError),
                    _ => Err(SaslError::MalformedChallenge),
                }
            }
            ClientPhase::Verified | ClientPhase::Failed => Err(SaslError::MalformedChallenge),
        }
    }

    /// Parses server-first and computes client-final.
    fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, SaslError> {
        let mut attrs = attributes(server_first);
        let nonce = match attrs.next() {
            Some((b'm', _)) => return Err(SaslError::UnsupportedExtension),
            Some((b'r', nonce)) => nonce,
            _ => return Err(SaslError::MalformedChallenge),
        };
        // R5802-4: the server's nonce extends ours (and adds something).
        if !is_printable_nonce(nonce)
            || nonce.len() <= self.nonce_len
            || !nonce.starts_with(self.client_nonce())
        {
            return Err(SaslError::NonceMismatch);
        }
        let Some((b's', salt_b64)) = attrs.next() else {
            return Err(SaslError::MalformedChallenge);
        };
        let mut salt = Vec::new();
        decode_base64(salt_b64, &mut salt).map_err(|_| SaslError::MalformedChallenge)?;
        if salt.is_empty() {
            return Err(SaslError::MalformedChallenge);
        }
        let Some((b'i', count)) = attrs.next() else {
            return Err(SaslError::MalformedChallenge);
        };
        let iterations = parse_positive(count)
            .filter(|&i| i <= MAX_ITERATIONS)
            .ok_or(SaslError::InvalidIterationCount)?;
        // Further attributes are extensions, ignored (RFC 5802 §7).

        let hash = self.hash;
        let salted = hash.hi(self.password.expose().as_bytes(), &salt, iterations);
        let client_key = hash.hmac(&salted, &[b"Client Key"]);
        let stored_key = hash.hash(&client_key);
        let server_key = hash.hmac(&salted, &[b"Server Key"]);

        let mut without_proof = b"c=".to_vec();
        encode_base64(CLIENT_GS2_HEADER, &mut without_proof);
        without_proof.extend_from_slice(b",r=");
        without_proof.extend_from_slice(nonce);
        let auth_message: [&[u8]; 5] = [
            &self.client_first_bare,
            b",",
            server_first,
            b",",
            &without_proof,
        ];
        let mut proof = client_key;
        xor_in_place(&mut proof, &hash.hmac(&stored_key, &auth_message));
        let server_signature = hash.hmac(&server_key, &auth_message);

        let mut out = without_proof;
        out.extend_from_slice(b",p=");
        encode_base64(&proof, &mut out);
        self.phase = ClientPhase::AwaitServerFinal(server_signature);
        Ok(out)
    }

    pub(super) const fn finish(&self) -> Result<(), SaslError> {
        match self.phase {
            ClientPhase::Verified => Ok(()),
            ClientPhase::Failed => Err(SaslError::ServerSignatureMismatch),
            _ => Err(SaslError::MissingServerFinal),
        }
    }
}

// ---- server --------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerPhase {
    AwaitClientFirst,
    AwaitCredentials,
    AwaitClientFinal,
    AwaitAck,
    Done,
}

/// Settings the server needs for unknown users.
pub(super) struct Decoy<'a> {
    /// Keys the decoy salt; the same key gives the same salt for a name on every connection.
    pub(super) key: &'a [u8],
    pub(super) iterations: u32,
}

/// The server half.
pub(super) struct Server {
    hash: ScramHash,
    phase: ServerPhase,
    /// The combined nonce after client-first; the server part alone before.
    nonce: Vec<u8>,
    gs2_header: Vec<u8>,
    client_first_bare: Vec<u8>,
    server_first: Vec<u8>,
    credentials: Option<ScramCredentials>,
    /// Unknown user: run the exchange on decoy credentials and fail at the end.
    decoy: bool,
}

impl Server {
    pub(super) fn new(hash: ScramHash, server_nonce: Vec<u8>) -> Self {
        Self {
            hash,
            phase: ServerPhase::AwaitClientFirst,
            nonce: server_nonce,
            gs2_header: Vec::new(),
            client_first_bare: Vec::new(),
            server_first: Vec::new(),
            credentials: None,
            decoy: false,
        }
    }

    pub(super) fn start(
        &mut self,
        initial: Option<&[u8]>,
        ex: &mut Exchange,
    ) -> Result<Next, SaslError> {
        match initial {
            Some(first) => self.client_first(first, ex),
            None => {
                ex.challenge.clear();
                Ok(Next::Challenge)
            }
        }
    }

    pub(super) fn step(&mut self, response: &[u8], ex: &mut Exchange) -> Result<Next, SaslError> {
        match self.phase {
            ServerPhase::AwaitClientFirst => self.client_first(response, ex),
            ServerPhase::AwaitClientFinal => self.client_final(response, ex),
            ServerPhase::AwaitAck => {
                self.phase = ServerPhase::Done;
                if !response.is_empty() {
                    return Err(SaslError::MalformedResponse);
                }
                Ok(Next::Success)
            }
            ServerPhase::AwaitCredentials | ServerPhase::Done => Err(SaslError::OutOfSequence),
        }
    }

    fn client_first(&mut self, msg: &[u8], ex: &mut Exchange) -> Result<Next, SaslError> {
        self.phase = ServerPhase::Done;
        let header = parse_gs2_header(msg)?;
        let bare = header.rest;
        let mut attrs = attributes(bare);
        let raw_user = match attrs.next() {
            Some((b'm', _)) => return Err(SaslError::UnsupportedExtension),
            Some((b'n', name)) => name,
            _ => return Err(SaslError::MalformedResponse),
        };
        let Some((b'r', client_nonce)) = attrs.next() else {
            return Err(SaslError::MalformedResponse);
        };
        if !is_printable_nonce(client_nonce) {
            return Err(SaslError::InvalidNonce);
        }
        // Extensions after the nonce are ignored. The name is hashed as received (the
        // whole message goes into AuthMessage) but looked up prepared (R5802-2).
        let user = decode_saslname(raw_user)?;
        let user = saslprep(&user)?;
        if user.is_empty() {
            return Err(SaslError::EmptyString);
        }
        ex.authzid = match header.authzid {
            Some(a) => prepare_authzid(a.as_bytes())?,
            None => String::new(),
        };
        ex.user = String::from(user);
        let mut combined = client_nonce.to_vec();
        combined.extend_from_slice(&self.nonce);
        self.nonce = combined;
        self.gs2_header = header.raw.to_vec();
        self.client_first_bare = bare.to_vec();
        self.phase = ServerPhase::AwaitCredentials;
        Ok(Next::LookupScram)
    }

    /// The application's answer to [`Next::LookupScram`]: `None` for an unknown user.
    pub(super) fn credentials(
        &mut self,
        credentials: Option<ScramCredentials>,
        decoy: &Decoy<'_>,
        ex: &mut Exchange,
    ) -> Result<Next, SaslError> {
        if self.phase != ServerPhase::AwaitCredentials {
            return Err(SaslError::OutOfSequence);
        }
        self.phase = ServerPhase::Done;
        let credentials = match credentials {
            Some(c) => {
                c.check(self.hash)?;
                c
            }
            None => {
                // Unknown user (R5802-8 `e=unknown-user` would reveal it): continue with a
                // salt that depends only on the name and the decoy key, so repeated probes
                // see what a real user would show, and fail after the proof.
                self.decoy = true;
                let tag: &[u8] = match self.hash {
                    ScramHash::Sha1 => b"SCRAM-SHA-1 decoy\0",
                    ScramHash::Sha256 => b"SCRAM-SHA-256 decoy\0",
                };
                let seed = self.hash.hmac(decoy.key, &[tag, ex.user.as_bytes()]);
                let salt = seed.get(..16).unwrap_or(&seed).to_vec();
                ScramCredentials::from_salted(self.hash, &seed, salt, decoy.iterations.max(1))
            }
        };
        let mut first = b"r=".to_vec();
        first.extend_from_slice(&self.nonce);
        first.extend_from_slice(b",s=");
        encode_base64(&credentials.salt, &mut first);
        first.extend_from_slice(b",i=");
        crate::fmt::push_u64(&mut first, u64::from(credentials.iterations));
        ex.challenge.clone_from(&first);
        self.server_first = first;
        self.credentials = Some(credentials);
        self.phase = ServerPhase::AwaitClientFinal;
        Ok(Next::Challenge)
    }

    fn client_final(&mut self, msg: &[u8], ex: &mut Exchange) -> Result<Next, SaslError> {
        self.phase = ServerPhase::Done;
        let Some(credentials) = self.credentials.take() else {
            return Err(SaslError::OutOfSequence);
        };
        // The proof is the last attribute.
        let split = msg
            .windows(3)
            .rposition(|w| w == b",p=")
            .ok_or(SaslError::MalformedResponse)?;
        let (without_proof, proof_b64) = (&msg[..split], &msg[split + 3..]);
        let mut attrs = attributes(without_proof);
        let Some((b'c', binding)) = attrs.next() else {
            return Err(SaslError::MalformedResponse);
        };
        let mut cbind_input = Vec::new();
        decode_base64(binding, &mut cbind_input).map_err(|_| SaslError::MalformedResponse)?;
        // R5802-6: without channel binding, `c=` is exactly the GS2 header.
        if cbind_input != self.gs2_header {
            return Err(SaslError::ChannelBindingMismatch);
        }
        let Some((b'r', nonce)) = attrs.next() else {
            return Err(SaslError::MalformedResponse);
        };
        if nonce != self.nonce.as_slice() {
            return Err(SaslError::NonceMismatch);
        }
        let mut proof = Vec::new();
        decode_base64(proof_b64, &mut proof).map_err(|_| SaslError::MalformedResponse)?;
        if proof.len() != self.hash.output_len() {
            return Err(SaslError::MalformedResponse);
        }
        let auth_message: [&[u8]; 5] = [
            &self.client_first_bare,
            b",",
            &self.server_first,
            b",",
            without_proof,
        ];
        let hash = self.hash;
        // ClientKey = ClientProof XOR ClientSignature; it must hash to StoredKey.
        let mut client_key = proof;
        xor_in_place(
            &mut client_key,
            &hash.hmac(&credentials.stored_key, &auth_message),
        );
        let matches = ct_eq(&hash.hash(&client_key), &credentials.stored_key);
        if !matches || self.decoy {
            // R5802-8: straight to `-ERR` rather than `e=invalid-proof`, so a client
            // cannot cancel its way around the failure count.
            return Ok(Next::Failure);
        }
        let signature = hash.hmac(&credentials.server_key, &auth_message);
        ex.challenge.clear();
        ex.challenge.extend_from_slice(b"v=");
        encode_base64(&signature, &mut ex.challenge);
        self.phase = ServerPhase::AwaitAck;
        Ok(Next::Challenge)
    }

    pub(super) const fn phase_name(&self) -> &'static str {
        match self.phase {
            ServerPhase::AwaitClientFirst => "await-client-first",
            ServerPhase::AwaitCredentials => "await-credentials",
            ServerPhase::AwaitClientFinal => "await-client-final",
            ServerPhase::AwaitAck => "await-ack",
            ServerPhase::Done => "done",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_base64(data, &mut out);
        out
    }

    fn unb64(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decode_base64(data, &mut out).unwrap();
        out
    }

    /// Runs a server through client-first and credentials; returns server-first.
    fn server_first(
        server: &mut Server,
        ex: &mut Exchange,
        first: &[u8],
        creds: ScramCredentials,
    ) -> Vec<u8> {
        assert_eq!(server.start(Some(first), ex), Ok(Next::LookupScram));
        let decoy = Decoy {
            key: b"k",
            iterations: 4096,
        };
        assert_eq!(
            server.credentials(Some(creds), &decoy, ex),
            Ok(Next::Challenge)
        );
        ex.challenge.clone()
    }

    #[test]
    fn rfc7677_sha256_vector_r7677_1() {
        let salt = unb64(b"W22ZaJ0SNY7soEsUEjb6gQ==");
        let creds = ScramCredentials::derive(ScramHash::Sha256, "pencil", &salt, 4096).unwrap();
        // Client.
        let mut client =
            Client::new(ScramHash::Sha256, "user", "pencil", b"rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(
            client.initial_response(),
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
        );
        // Server with the RFC's server nonce.
        let mut server = Server::new(
            ScramHash::Sha256,
            server_nonce(b"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"),
        );
        let mut ex = Exchange::default();
        let first = server_first(&mut server, &mut ex, &client.initial_response(), creds);
        assert_eq!(ex.user, "user");
        assert_eq!(
            first,
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let client_final = client.respond(&first).unwrap();
        assert_eq!(
            client_final,
            &b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="[..]
        );
        assert_eq!(client.finish(), Err(SaslError::MissingServerFinal));
        assert_eq!(server.step(&client_final, &mut ex), Ok(Next::Challenge));
        assert_eq!(
            ex.challenge,
            b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        // The R5034-AUTH-17 wire form of the server-final challenge.
        assert_eq!(
            b64(&ex.challenge),
            b"dj02cnJpVFJCaTIzV3BSUi93dHVwK21NaFVaVW4vZEI1bkxUSlJzamw5NUc0PQ=="
        );
        assert_eq!(client.respond(&ex.challenge), Ok(Vec::new()));
        assert_eq!(client.finish(), Ok(()));
        assert_eq!(server.step(b"", &mut ex), Ok(Next::Success));
    }

    #[test]
    fn rfc5802_sha1_vector() {
        let salt = unb64(b"QSXCR+Q6sek8bf92");
        let creds = ScramCredentials::derive(ScramHash::Sha1, "pencil", &salt, 4096).unwrap();
        let mut client = Client::new(
            ScramHash::Sha1,
            "user",
            "pencil",
            b"fyko+d2lbbFgONRv9qkxdawL",
        )
        .unwrap();
        let mut server = Server::new(ScramHash::Sha1, server_nonce(b"3rfcNHYJY1ZVvWVs7j"));
        let mut ex = Exchange::default();
        let first = server_first(&mut server, &mut ex, &client.initial_response(), creds);
        assert_eq!(
            first,
            b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
        );
        let client_final = client.respond(&first).unwrap();
        assert_eq!(
            client_final,
            &b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
                [..]
        );
        assert_eq!(server.step(&client_final, &mut ex), Ok(Next::Challenge));
        assert_eq!(ex.challenge, b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
        assert_eq!(client.respond(&ex.challenge), Ok(Vec::new()));
        assert_eq!(client.finish(), Ok(()));
    }

    #[test]
    fn client_rejects_bad_server_messages() {
        let new = || Client::new(ScramHash::Sha256, "user", "pencil", b"abc").unwrap();
        let cases: &[(&[u8], SaslError)] = &[
            (
                b"m=x,r=abcdef,s=QSXCR+Q6sek8bf92,i=4096",
                SaslError::UnsupportedExtension,
            ),
            (
                b"r=xyzdef,s=QSXCR+Q6sek8bf92,i=4096",
                SaslError::NonceMismatch,
            ),
            (b"r=abc,s=QSXCR+Q6sek8bf92,i=4096", SaslError::NonceMismatch),
            (
                b"r=abcdef,s=QSXCR+Q6sek8bf92,i=0",
                SaslError::InvalidIterationCount,
            ),
            (
                b"r=abcdef,s=QSXCR+Q6sek8bf92,i=04096",
                SaslError::InvalidIterationCount,
            ),
            (
                b"r=abcdef,s=QSXCR+Q6sek8bf92,i=99999999999",
                SaslError::InvalidIterationCount,
            ),
            (
                b"r=abcdef,s=QSXCR+Q6sek8bf92,i=16777216",
                SaslError::InvalidIterationCount,
            ),
            (b"r=abcdef,s=!!,i=4096", SaslError::MalformedChallenge),
            (b"r=abcdef,s=,i=4096", SaslError::MalformedChallenge),
            (b"r=abcdef,i=4096", SaslError::MalformedChallenge),
            (b"garbage", SaslError::MalformedChallenge),
        ];
        for &(challenge, want) in cases {
            let mut c = new();
            assert_eq!(
                c.respond(challenge),
                Err(want),
                "{:?}",
                challenge.escape_ascii()
            );
            assert!(c.finish().is_err());
        }
        // The first empty challenge asks for client-first (once).
        let mut c = new();
        assert_eq!(c.respond(b"").unwrap(), b"n,,n=user,r=abc");
        assert!(c.respond(b"").is_err());
    }

    #[test]
    fn client_server_final_checks_r5802_7() {
        let mut c = Client::new(ScramHash::Sha256, "user", "pencil", b"abc").unwrap();
        c.respond(b"r=abcdef,s=QSXCR+Q6sek8bf92,i=4096,x=ext")
            .unwrap();
        let mut wrong = c.clone_for_test();
        assert_eq!(
            wrong.respond(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(SaslError::ServerSignatureMismatch)
        );
        assert!(wrong.finish().is_err());
        let mut err = c.clone_for_test();
        assert_eq!(err.respond(b"e=invalid-proof"), Err(SaslError::ServerError));
        assert_eq!(c.respond(b"x=1"), Err(SaslError::MalformedChallenge));
    }

    impl Client {
        fn clone_for_test(&self) -> Self {
            Self {
                hash: self.hash,
                password: Secret::new(self.password.expose().clone()),
                client_first_bare: self.client_first_bare.clone(),
                nonce_len: self.nonce_len,
                phase: self.phase.clone(),
                resent: self.resent,
            }
        }
    }

    #[test]
    fn client_input_checks() {
        for bad in [&b""[..], b"a,b", b"a b", b"\x7f", "é".as_bytes()] {
            assert_eq!(
                Client::new(ScramHash::Sha1, "u", "p", bad).err(),
                Some(SaslError::InvalidNonce)
            );
        }
        assert_eq!(
            Client::new(ScramHash::Sha1, "u", "p\u{7}", b"n").err(),
            Some(SaslError::ProhibitedCharacter)
        );
        let c = Client::new(ScramHash::Sha1, "a,b=c", "p", b"n").unwrap();
        assert_eq!(c.initial_response(), b"n,,n=a=2Cb=3Dc,r=n");
    }

    #[test]
    fn saslname_r5802_2() {
        assert_eq!(decode_saslname(b"a=2Cb").unwrap(), "a,b");
        assert_eq!(decode_saslname(b"a=3D").unwrap(), "a=");
        for bad in [
            &b"us=41er"[..],
            b"a=",
            b"a=2",
            b"a=2c",
            b"",
            b"a\0b",
            b"\xff",
        ] {
            assert_eq!(
                decode_saslname(bad),
                Err(SaslError::InvalidUsernameEncoding),
                "{:?}",
                bad.escape_ascii()
            );
        }
    }

    fn server_with_user() -> (Server, Exchange) {
        let mut server = Server::new(ScramHash::Sha256, server_nonce(b"SRV"));
        let mut ex = Exchange::default();
        assert_eq!(
            server.start(Some(b"n,,n=user,r=abc"), &mut ex),
            Ok(Next::LookupScram)
        );
        (server, ex)
    }

    #[test]
    fn server_client_first_checks() {
        let cases: &[(&[u8], SaslError)] = &[
            (b"x,,n=user,r=abc", SaslError::MalformedResponse),
            (
                b"p=tls-unique,,n=user,r=abc",
                SaslError::ChannelBindingNotSupported,
            ),
            (b"n,,m=x,n=user,r=abc", SaslError::UnsupportedExtension),
            (b"n,,n=us=41er,r=abc", SaslError::InvalidUsernameEncoding),
            (b"n,,n=user,r=a b", SaslError::InvalidNonce),
            (b"n,,n=user,r=", SaslError::InvalidNonce),
            (b"n,,n=user", SaslError::MalformedResponse),
            (b"n,,r=abc,n=user", SaslError::MalformedResponse),
            (b"n,x=y,n=user,r=abc", SaslError::MalformedResponse),
            (b"n,a=,n=user,r=abc", SaslError::InvalidUsernameEncoding),
            (b"n,,n=\x07,r=abc", SaslError::ProhibitedCharacter),
            (b"n,,n=\xc2\xad,r=abc", SaslError::EmptyString),
            (b"n", SaslError::MalformedResponse),
        ];
        for &(first, want) in cases {
            let mut server = Server::new(ScramHash::Sha256, server_nonce(b"SRV"));
            let mut ex = Exchange::default();
            assert_eq!(
                server.start(Some(first), &mut ex),
                Err(want),
                "{:?}",
                first.escape_ascii()
            );
            // Nothing further is accepted.
            assert!(server.step(b"x", &mut ex).is_err());
        }
        let mut server = Server::new(ScramHash::Sha256, server_nonce(b"SRV"));
        let mut ex = Exchange::default();
        assert_eq!(
            server.start(Some(b"y,a=bo=2Cb,n=a=2Cb,r=abc,x=ext"), &mut ex),
            Ok(Next::LookupScram)
        );
        assert_eq!((ex.authzid.as_str(), ex.user.as_str()), ("bo,b", "a,b"));
    }

    #[test]
    fn server_client_final_checks() {
        let creds =
            || ScramCredentials::derive(ScramHash::Sha256, "pencil", b"salt", 4096).unwrap();
        let decoy = Decoy {
            key: b"k",
            iterations: 4096,
        };
        let proof = b64(&[0u8; 32]);
        let cases: Vec<(Vec<u8>, Result<Next, SaslError>)> = vec![
            // `y,,` is `eSws`, not `biws` (R5802-6).
            (
                [b"c=eSws,r=abcSRV,p=".as_slice(), &proof].concat(),
                Err(SaslError::ChannelBindingMismatch),
            ),
            (
                [b"c=biws,r=abcSRX,p=".as_slice(), &proof].concat(),
                Err(SaslError::NonceMismatch),
            ),
            (
                b"c=biws,r=abcSRV".to_vec(),
                Err(SaslError::MalformedResponse),
            ),
            (
                b"c=biws,r=abcSRV,p=AAAA".to_vec(),
                Err(SaslError::MalformedResponse),
            ),
            (
                b"c=bi!s,r=abcSRV,p=AAAA".to_vec(),
                Err(SaslError::MalformedResponse),
            ),
            (
                [b"r=abcSRV,c=biws,p=".as_slice(), &proof].concat(),
                Err(SaslError::MalformedResponse),
            ),
            // Well-formed, wrong proof: plain failure.
            (
                [b"c=biws,r=abcSRV,p=".as_slice(), &proof].concat(),
                Ok(Next::Failure),
            ),
        ];
        for (msg, want) in cases {
            let (mut server, mut ex) = server_with_user();
            assert_eq!(
                server.credentials(Some(creds()), &decoy, &mut ex),
                Ok(Next::Challenge)
            );
            assert_eq!(server.step(&msg, &mut ex), want, "{:?}", msg.escape_ascii());
            assert!(server.step(b"", &mut ex).is_err());
        }
    }

    #[test]
    fn y_flag_with_biws_fails_even_with_a_valid_proof_r5802_6() {
        // The proof does not cover the GS2 header, so only the `c=` check catches this.
        let creds = ScramCredentials::derive(ScramHash::Sha256, "pencil", b"salt", 4096).unwrap();
        let mut client = Client::new(ScramHash::Sha256, "user", "pencil", b"abc").unwrap();
        let mut server = Server::new(ScramHash::Sha256, server_nonce(b"SRV"));
        let mut ex = Exchange::default();
        let first = server_first(&mut server, &mut ex, b"y,,n=user,r=abc", creds.clone());
        let fin = client.respond(&first).unwrap();
        assert!(fin.starts_with(b"c=biws,"));
        assert_eq!(
            server.step(&fin, &mut ex),
            Err(SaslError::ChannelBindingMismatch)
        );
        // The same client-final after `n,,` succeeds.
        let mut server = Server::new(ScramHash::Sha256, server_nonce(b"SRV"));
        let first2 = server_first(&mut server, &mut ex, b"n,,n=user,r=abc", creds);
        assert_eq!(first, first2);
        assert_eq!(server.step(&fin, &mut ex), Ok(Next::Challenge));
    }

    #[test]
    fn decoy_never_succeeds_even_for_a_proof_from_its_own_keys() {
        let decoy = Decoy {
            key: b"k",
            iterations: 4096,
        };
        let (mut server, mut ex) = server_with_user();
        assert_eq!(
            server.credentials(None, &decoy, &mut ex),
            Ok(Next::Challenge)
        );
        let server_first = ex.challenge.clone();
        // Compute the proof from the decoy's own "salted password".
        let hash = ScramHash::Sha256;
        let seed = hash.hmac(b"k", &[b"SCRAM-SHA-256 decoy\0", b"user"]);
        let client_key = hash.hmac(&seed, &[b"Client Key"]);
        let stored_key = hash.hash(&client_key);
        let without_proof = b"c=biws,r=abcSRV";
        let auth: [&[u8]; 5] = [b"n=user,r=abc", b",", &server_first, b",", without_proof];
        let mut proof = client_key;
        xor_in_place(&mut proof, &hash.hmac(&stored_key, &auth));
        let fin = [&without_proof[..], b",p=", &b64(&proof)].concat();
        assert_eq!(server.step(&fin, &mut ex), Ok(Next::Failure));
    }

    #[test]
    fn unknown_user_gets_a_stable_decoy_salt() {
        let decoy = Decoy {
            key: b"server secret",
            iterations: 4096,
        };
        let run = |key: &[u8]| {
            let (mut server, mut ex) = server_with_user();
            let d = Decoy { key, ..decoy };
            assert_eq!(server.credentials(None, &d, &mut ex), Ok(Next::Challenge));
            let first = ex.challenge.clone();
            // A client that knows some password still fails.
            let mut client = Client::new(ScramHash::Sha256, "user", "pencil", b"abc").unwrap();
            client.resent = true;
            let fin = client.respond(&first).unwrap();
            assert_eq!(server.step(&fin, &mut ex), Ok(Next::Failure));
            first
        };
        let a = run(b"server secret");
        assert_eq!(a, run(b"server secret"));
        assert_ne!(a, run(b"other"));
        assert!(a.ends_with(b",i=4096"));
    }

    #[test]
    fn credentials_checks() {
        assert_eq!(
            ScramCredentials::derive(ScramHash::Sha1, "p", b"s", 4095).err(),
            Some(SaslError::InvalidIterationCount)
        );
        assert_eq!(
            ScramCredentials::derive(ScramHash::Sha1, "p", b"", 4096).err(),
            Some(SaslError::InvalidCredentials)
        );
        let mut sha1 = ScramCredentials::derive(ScramHash::Sha1, "p", b"s", 4096).unwrap();
        assert_eq!(
            sha1.check(ScramHash::Sha256),
            Err(SaslError::InvalidCredentials)
        );
        assert_eq!(sha1.check(ScramHash::Sha1), Ok(()));
        sha1.iterations = 0;
        assert_eq!(
            sha1.check(ScramHash::Sha1),
            Err(SaslError::InvalidCredentials)
        );
        let dbg = alloc::format!("{sha1:?}");
        assert!(
            !dbg.contains("stored_key") && !dbg.contains("server_key"),
            "{dbg}"
        );
        // Keys of the RFC 7677 user, cross-checked with Python's hashlib/hmac.
        let c = ScramCredentials::derive(
            ScramHash::Sha256,
            "pencil",
            &unb64(b"W22ZaJ0SNY7soEsUEjb6gQ=="),
            4096,
        )
        .unwrap();
        assert_eq!(
            b64(&c.stored_key),
            b"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
        );
        assert_eq!(
            b64(&c.server_key),
            b"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }

    #[test]
    fn server_nonce_encoding() {
        assert_eq!(server_nonce(b"abc"), b"abc");
        assert_eq!(server_nonce(b"a,b"), b"YSxi");
        assert_eq!(server_nonce(b""), b"");
    }
}
