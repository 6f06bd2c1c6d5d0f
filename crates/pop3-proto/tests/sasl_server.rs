//! The SASL mechanisms behind a real `ServerConnection`: raw client lines in, exact server
//! lines out, for every mechanism, named by the checklist rows they cover
//! (`shared/notes/pop3-conformance-checklist.md` §6–7).
#![allow(clippy::unwrap_used)]

use std::{
    sync::{Arc, LazyLock},
    time::Duration,
};

use base64::Engine as _;
use pop3_proto::{
    Listing, ServerConnection, ServerEvent,
    sasl::{
        Mechanism, SaslClient, SaslError, SaslServer, ScramCredentials, ScramHash, ServerStep,
        cram_md5,
    },
    server::{LoginRejection, ServerConfig, TlsMode},
};

const HOST: &str = "pop.example.net";
const PORT: u16 = 995;
const OK: &str = "+OK Logged in, 0 messages (0 octets)\r\n";
const AUTH_FAILED: &str = "-ERR [AUTH] Authentication failed.\r\n";

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// A step with its data copied out of the `SaslServer`.
#[derive(Debug)]
enum Step {
    Challenge(Vec<u8>),
    Password(String, String, Vec<u8>),
    Cram(String, Vec<u8>, Vec<u8>),
    Lookup(String),
    Token(String, Vec<u8>),
    External(String),
    Success(String, String),
    Fail,
}

fn own(step: Result<ServerStep<'_>, SaslError>) -> Step {
    match step {
        Ok(ServerStep::Challenge(d)) => Step::Challenge(d.to_vec()),
        Ok(ServerStep::CheckPassword {
            authzid,
            user,
            password,
        }) => Step::Password(authzid.into(), user.into(), password.expose().to_vec()),
        Ok(ServerStep::CheckCramMd5 {
            user,
            challenge,
            digest,
        }) => Step::Cram(user.into(), challenge.to_vec(), digest.to_vec()),
        Ok(ServerStep::LookupScram { user, .. }) => Step::Lookup(user.into()),
        Ok(ServerStep::CheckToken { user, token }) => {
            Step::Token(user.into(), token.expose().to_vec())
        }
        Ok(ServerStep::CheckExternal { authzid }) => Step::External(authzid.into()),
        Ok(ServerStep::Success { authzid, user }) => Step::Success(authzid.into(), user.into()),
        // `Failure`, errors, and any step a future version adds.
        _ => Step::Fail,
    }
}

/// The application: its users, SCRAM credentials, tokens and the TLS client identity.
struct App {
    passwords: Vec<(String, Vec<u8>)>,
    scram: Vec<(ScramHash, String, ScramCredentials)>,
    tokens: Vec<(&'static str, &'static str)>,
    cert_user: Option<&'static str>,
}

/// SCRAM credentials, derived once (PBKDF2 is slow in debug builds).
static SCRAM: LazyLock<Vec<(ScramHash, String, ScramCredentials)>> = LazyLock::new(|| {
    let derive =
        |hash, password, salt: &[u8]| ScramCredentials::derive(hash, password, salt, 4096).unwrap();
    let salt = b"alice-salt-01234";
    vec![
        (
            ScramHash::Sha256,
            "user".into(),
            derive(
                ScramHash::Sha256,
                "pencil",
                &unb64("W22ZaJ0SNY7soEsUEjb6gQ=="),
            ),
        ),
        (
            ScramHash::Sha1,
            "user".into(),
            derive(ScramHash::Sha1, "pencil", &unb64("QSXCR+Q6sek8bf92")),
        ),
        (
            ScramHash::Sha256,
            "alice".into(),
            derive(ScramHash::Sha256, "secret", salt),
        ),
        (
            ScramHash::Sha1,
            "alice".into(),
            derive(ScramHash::Sha1, "secret", salt),
        ),
    ]
});

impl App {
    fn new() -> Self {
        let long = "x".repeat(255);
        Self {
            passwords: vec![
                ("alice".into(), b"secret".to_vec()),
                ("tim".into(), b"tanstaaftanstaaf".to_vec()),
                (long.clone(), long.into_bytes()),
            ],
            scram: SCRAM.clone(),
            tokens: vec![
                ("good-token", "alice"),
                ("mF_9.B5f-4.1JqM", "user"),
                (
                    "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
                    "someuser@example.com",
                ),
            ],
            cert_user: None,
        }
    }

    fn password_ok(&self, user: &str, password: &[u8]) -> bool {
        self.passwords
            .iter()
            .any(|(u, p)| u == user && p == password)
    }
}

struct Driver {
    conn: ServerConnection,
    sasl: Option<SaslServer>,
    app: App,
    nonce: Vec<u8>,
    wire: Vec<u8>,
    /// Users logged in (the identity the application chose).
    logged_in: Option<String>,
}

enum Input {
    Start(Mechanism, Option<Vec<u8>>),
    Response(Vec<u8>),
}

impl Driver {
    fn with_config(config: ServerConfig) -> Self {
        let conn = ServerConnection::new(Arc::new(config), Duration::ZERO, None).unwrap();
        let mut d = Self {
            conn,
            sasl: None,
            app: App::new(),
            nonce: b"fresh-nonce-1".to_vec(),
            wire: Vec::new(),
            logged_in: None,
        };
        let greeting = d.send(b"");
        assert!(greeting.starts_with("+OK "), "{greeting}");
        d
    }

    /// Every mechanism, plaintext allowed without TLS.
    fn new() -> Self {
        let mut config = ServerConfig::new();
        config.sasl_mechanisms = Mechanism::ALL.to_vec();
        config.allow_plaintext_without_tls = true;
        config.max_auth_failures = 100;
        Self::with_config(config)
    }

    /// Implicit TLS (EXTERNAL needs it), with a client certificate for `cert_user`.
    fn tls(cert_user: Option<&'static str>) -> Self {
        let mut config = ServerConfig::new();
        config.sasl_mechanisms = Mechanism::ALL.to_vec();
        config.tls = TlsMode::Implicit;
        config.max_auth_failures = 100;
        let mut d = Self::with_config(config);
        d.app.cert_user = cert_user;
        d
    }

    /// Sends raw bytes; returns what the server wrote.
    fn send(&mut self, bytes: &[u8]) -> String {
        self.conn.receive(Duration::ZERO, bytes);
        loop {
            let mut progressed = false;
            while let Some(event) = self.conn.poll_event() {
                progressed = true;
                let input = match event {
                    ServerEvent::AuthStart {
                        mechanism,
                        initial_response,
                    } => Input::Start(mechanism, initial_response.map(|r| r.expose().to_vec())),
                    ServerEvent::AuthResponse { response } => {
                        Input::Response(response.expose().to_vec())
                    }
                    ServerEvent::AuthAborted => {
                        self.sasl = None;
                        continue;
                    }
                    other => panic!("unexpected {other:?}"),
                };
                self.handle(input);
            }
            progressed |= self.conn.poll_transmit(&mut self.wire) > 0;
            if !progressed {
                break;
            }
        }
        String::from_utf8(std::mem::take(&mut self.wire)).unwrap()
    }

    fn line(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes())
    }

    fn handle(&mut self, input: Input) {
        let mut step = match input {
            Input::Start(mechanism, ir) => {
                let s = self.sasl.insert(
                    SaslServer::new(mechanism, &self.nonce, HOST)
                        .with_port(PORT)
                        .with_unknown_user_key(b"server-wide decoy key", 4096),
                );
                own(s.start(ir.as_deref()))
            }
            Input::Response(data) => own(self.sasl.as_mut().unwrap().step(&data)),
        };
        let sasl = self.sasl.as_mut().unwrap();
        let mechanism = sasl.mechanism();
        let login = loop {
            step = match step {
                Step::Challenge(data) => {
                    self.conn.auth_challenge(&data).unwrap();
                    return;
                }
                Step::Password(authzid, user, password) => {
                    let ok = self.app.password_ok(&user, &password)
                        && (authzid.is_empty() || authzid == user);
                    break ok.then_some(user);
                }
                Step::Cram(user, challenge, digest) => {
                    let ok = self
                        .app
                        .passwords
                        .iter()
                        .any(|(u, p)| *u == user && cram_md5::verify(p, &challenge, &digest));
                    break ok.then_some(user);
                }
                Step::Lookup(user) => {
                    let hash = ScramHash::from_mechanism(mechanism).unwrap();
                    let creds = self
                        .app
                        .scram
                        .iter()
                        .find(|(h, u, _)| *h == hash && *u == user)
                        .map(|(_, _, c)| c.clone());
                    own(sasl.scram_credentials(creds))
                }
                Step::Token(user, token) => {
                    let owner = self
                        .app
                        .tokens
                        .iter()
                        .find(|(t, _)| t.as_bytes() == token)
                        .map(|(_, u)| *u);
                    match owner {
                        Some(owner) if user.is_empty() || user == owner => {
                            break Some(owner.to_owned());
                        }
                        _ => own(sasl.token_rejected(br#"{"status":"invalid_token"}"#)),
                    }
                }
                Step::External(authzid) => {
                    break self
                        .app
                        .cert_user
                        .filter(|cert| authzid.is_empty() || authzid == *cert)
                        .map(str::to_owned);
                }
                Step::Success(authzid, user) => {
                    break (authzid.is_empty() || authzid == user).then_some(user);
                }
                Step::Fail => break None,
            };
        };
        self.sasl = None;
        match login {
            Some(user) => {
                self.logged_in = Some(user);
                self.conn.accept_login(Listing::new()).unwrap();
            }
            None => self
                .conn
                .reject_login(LoginRejection::BadCredentials)
                .unwrap(),
        }
    }

    /// Runs a whole exchange with `client`, answering challenges as a client would;
    /// returns the server's final line and the client's `finish` after `+OK`.
    fn exchange(
        &mut self,
        mut client: SaslClient,
        inline: bool,
    ) -> (String, Result<(), SaslError>) {
        let name = client.mechanism().name();
        let mut out = match client.initial_response().filter(|_| inline) {
            Some(ir) if ir.is_empty() => self.line(&format!("AUTH {name} =")),
            Some(ir) => self.line(&format!("AUTH {name} {}", b64(&ir))),
            None => self.line(&format!("AUTH {name}")),
        };
        for _ in 0..10 {
            let Some(challenge) = out.strip_prefix("+ ").and_then(|c| c.strip_suffix("\r\n"))
            else {
                let finish = if out.starts_with("+OK") {
                    client.finish()
                } else {
                    Err(SaslError::Incomplete)
                };
                return (out, finish);
            };
            match client.respond(&unb64(challenge)) {
                Ok(answer) => out = self.line(&b64(&answer)),
                Err(e) => {
                    let cancelled = self.line("*");
                    return (cancelled, Err(e));
                }
            }
        }
        panic!("exchange did not end: {out}");
    }
}

// ---- SCRAM ---------------------------------------------------------------------------

#[test]
fn r7677_1_scram_sha256_vector_on_the_wire_r5034_auth_17() {
    let mut d = Driver::new();
    d.nonce = b"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".to_vec();
    let first = d.line(&format!(
        "AUTH SCRAM-SHA-256 {}",
        b64(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    ));
    assert_eq!(
        first,
        format!(
            "+ {}\r\n",
            b64(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
        )
    );
    let fin = d.line(&b64(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    ));
    assert_eq!(
        fin,
        "+ dj02cnJpVFJCaTIzV3BSUi93dHVwK21NaFVaVW4vZEI1bkxUSlJzamw5NUc0PQ==\r\n"
    );
    assert_eq!(d.line(""), OK);
    assert_eq!(d.logged_in.as_deref(), Some("user"));
    // Still in TRANSACTION: a second AUTH is refused by the connection (R5034-AUTH-2).
    assert!(d.line("STAT").starts_with("+OK 0 0"));
}

#[test]
fn r5802_scram_sha1_vector_on_the_wire() {
    let mut d = Driver::new();
    d.nonce = b"3rfcNHYJY1ZVvWVs7j".to_vec();
    let first = d.line(&format!(
        "AUTH SCRAM-SHA-1 {}",
        b64(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL")
    ));
    assert_eq!(
        first,
        format!(
            "+ {}\r\n",
            b64(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
        )
    );
    let fin = d.line(&b64(
        b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    ));
    assert_eq!(
        fin,
        format!("+ {}\r\n", b64(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="))
    );
    assert_eq!(d.line(""), OK);
}

#[test]
fn scram_clients_succeed_inline_and_after_empty_challenge_r5034_auth_6() {
    for inline in [true, false] {
        for hash in [ScramHash::Sha1, ScramHash::Sha256] {
            let mut d = Driver::new();
            let client = SaslClient::scram(hash, "alice", "secret", b"client-nonce-xyz").unwrap();
            let (last, finish) = d.exchange(client, inline);
            assert_eq!(last, OK, "{hash:?} inline={inline}");
            assert_eq!(finish, Ok(()));
            assert_eq!(d.logged_in.as_deref(), Some("alice"));
        }
    }
    // Without an initial response the first challenge is exactly `+ \r\n`.
    let mut d = Driver::new();
    assert_eq!(d.line("AUTH SCRAM-SHA-256"), "+ \r\n");
}

#[test]
fn r5802_8_scram_wrong_password_and_unknown_user() {
    for (user, password) in [("alice", "wrong"), ("nobody", "secret")] {
        let mut d = Driver::new();
        let client = SaslClient::scram_sha256(user, password, b"cn").unwrap();
        let (last, finish) = d.exchange(client, true);
        assert_eq!(last, AUTH_FAILED, "{user}");
        assert!(finish.is_err());
        assert_eq!(d.logged_in, None);
        // R5034-AUTH-19: the session is as before; the right password works next.
        let client = SaslClient::scram_sha256("alice", "secret", b"cn2").unwrap();
        assert_eq!(d.exchange(client, true).0, OK);
    }
}

#[test]
fn r5802_unknown_user_cannot_be_probed_by_salt() {
    let salt_of = |user: &str| {
        let mut d = Driver::new();
        let out = d.line(&format!(
            "AUTH SCRAM-SHA-256 {}",
            b64(format!("n,,n={user},r=abc").as_bytes())
        ));
        let first = unb64(out.strip_prefix("+ ").unwrap().trim_end());
        let first = String::from_utf8(first).unwrap();
        first.split(',').skip(1).collect::<Vec<_>>().join(",")
    };
    // Same decoy on every connection, like a real user's stored salt.
    assert_eq!(salt_of("ghost"), salt_of("ghost"));
    assert_ne!(salt_of("ghost"), salt_of("phantom"));
    assert!(salt_of("ghost").ends_with(",i=4096"));
}

#[test]
fn r5802_1_2_3_6_10_scram_malformed_client_messages() {
    let first_messages: &[&[u8]] = &[
        b"x,,n=user,r=abc",            // R5802-1
        b"p=tls-unique,,n=user,r=abc", // R5802-10: no channel binding
        b"n,,m=x,n=user,r=abc",        // R5802-3
        b"n,,n=us=41er,r=abc",         // R5802-2
        b"n,,n=user",                  // no nonce
    ];
    for &first in first_messages {
        let mut d = Driver::new();
        let out = d.line(&format!("AUTH SCRAM-SHA-256 {}", b64(first)));
        assert_eq!(out, AUTH_FAILED, "{}", first.escape_ascii());
    }
    // R5802-2: `=2C` decodes to a comma before the lookup (no such user here, so the
    // exchange proceeds on a decoy and the server-first comes back).
    let mut d = Driver::new();
    let out = d.line(&format!("AUTH SCRAM-SHA-256 {}", b64(b"n,,n=a=2Cb,r=abc")));
    assert!(out.starts_with("+ "), "{out}");

    // R5802-6: `y,,` announced, `c=biws` (`n,,`) sent, with a proof that is otherwise
    // right (the proof does not cover the GS2 header).
    let mut d = Driver::new();
    let mut client = SaslClient::scram_sha256("alice", "secret", b"abc").unwrap();
    let first = client.initial_response().unwrap();
    let y_first = [&b"y"[..], &first[1..]].concat();
    let out = d.line(&format!("AUTH SCRAM-SHA-256 {}", b64(&y_first)));
    let server_first = unb64(out.strip_prefix("+ ").unwrap().trim_end());
    let fin = client.respond(&server_first).unwrap();
    assert!(fin.starts_with(b"c=biws,"));
    assert_eq!(d.line(&b64(&fin)), AUTH_FAILED);
    let proof = b64(&[0; 32]);

    // R5802-4: client-final with an altered nonce.
    let mut d = Driver::new();
    d.nonce = b"SRV".to_vec();
    d.line(&format!("AUTH SCRAM-SHA-256 {}", b64(b"n,,n=alice,r=abc")));
    assert_eq!(
        d.line(&b64(format!("c=biws,r=abcSRX,p={proof}").as_bytes())),
        AUTH_FAILED
    );
}

#[test]
fn r5802_5_server_first_has_salt_and_iterations_at_least_4096() {
    let mut d = Driver::new();
    let out = d.line(&format!("AUTH SCRAM-SHA-1 {}", b64(b"n,,n=alice,r=abc")));
    let first = String::from_utf8(unb64(out.strip_prefix("+ ").unwrap().trim_end())).unwrap();
    let attrs: Vec<&str> = first.split(',').collect();
    assert!(
        attrs[0].starts_with("r=abc") && attrs[0].len() > 5,
        "{first}"
    );
    assert_eq!(
        unb64(attrs[1].strip_prefix("s=").unwrap()),
        b"alice-salt-01234"
    );
    let i: u32 = attrs[2].strip_prefix("i=").unwrap().parse().unwrap();
    assert!(i >= 4096);
}

// ---- CRAM-MD5 ------------------------------------------------------------------------

#[test]
fn r2195_1_3_cram_md5_on_the_wire() {
    let mut d = Driver::new();
    d.nonce = b"1896.697170952".to_vec();
    // Our HOST is pop.example.net, so the challenge is <1896.697170952@pop.example.net>.
    let challenge = b"<1896.697170952@pop.example.net>";
    assert_eq!(d.line("AUTH CRAM-MD5"), format!("+ {}\r\n", b64(challenge)));
    let digest = cram_md5::digest(b"tanstaaftanstaaf", challenge);
    let answer = [&b"tim "[..], &digest].concat();
    assert_eq!(d.line(&b64(&answer)), OK);
    assert_eq!(d.logged_in.as_deref(), Some("tim"));

    // One bit changed -> -ERR [AUTH].
    let mut d = Driver::new();
    d.nonce = b"1896.697170952".to_vec();
    d.line("AUTH CRAM-MD5");
    let mut bad = answer.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert_eq!(d.line(&b64(&bad)), AUTH_FAILED);

    // The SaslClient against it.
    let mut d = Driver::new();
    let (last, finish) = d.exchange(SaslClient::cram_md5("alice", "secret"), true);
    assert_eq!((last.as_str(), finish), (OK, Ok(())));
}

#[test]
fn r2195_rfc_vector_with_the_rfc_hostname() {
    let config = {
        let mut c = ServerConfig::new();
        c.sasl_mechanisms = vec![Mechanism::CramMd5];
        c
    };
    let mut conn = ServerConnection::new(Arc::new(config), Duration::ZERO, None).unwrap();
    let mut wire = Vec::new();
    conn.receive(Duration::ZERO, b"AUTH CRAM-MD5\r\n");
    let mut sasl = SaslServer::new(
        Mechanism::CramMd5,
        b"1896.697170952",
        "postoffice.reston.mci.net",
    );
    let Some(ServerEvent::AuthStart {
        mechanism: Mechanism::CramMd5,
        initial_response: None,
    }) = conn.poll_event()
    else {
        panic!()
    };
    let Ok(ServerStep::Challenge(c)) = sasl.start(None) else {
        panic!()
    };
    conn.auth_challenge(c).unwrap();
    conn.receive(
        Duration::ZERO,
        b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n",
    );
    let Some(ServerEvent::AuthResponse { response }) = conn.poll_event() else {
        panic!()
    };
    let response = response.expose().to_vec();
    let Ok(ServerStep::CheckCramMd5 {
        user,
        challenge,
        digest,
    }) = sasl.step(&response)
    else {
        panic!()
    };
    assert_eq!(user, "tim");
    assert!(cram_md5::verify(b"tanstaaftanstaaf", challenge, digest));
    conn.accept_login(Listing::new()).unwrap();
    conn.poll_transmit(&mut wire);
    let wire = String::from_utf8(wire).unwrap();
    assert!(wire.starts_with("+OK POP3 server ready\r\n+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n+OK Logged in"), "{wire}");
}

// ---- PLAIN ---------------------------------------------------------------------------

#[test]
fn r4616_1_plain_vector_and_r5034_auth_14() {
    let mut d = Driver::new();
    assert_eq!(d.line("AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm"), OK);
    let mut d = Driver::new();
    assert_eq!(
        d.line(&format!("AUTH PLAIN {}", b64(b"\0tim\0wrong"))),
        AUTH_FAILED
    );
    // The SaslClient produces the vector.
    let mut c = SaslClient::plain("", "tim", "tanstaaftanstaaf");
    assert_eq!(
        b64(&c.initial_response().unwrap()),
        "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"
    );
}

#[test]
fn r4616_2_exactly_two_nuls() {
    for bad in [&b"a\0b\0c\0d"[..], b"ab", b"\0\0"] {
        let mut d = Driver::new();
        assert_eq!(d.line(&format!("AUTH PLAIN {}", b64(bad))), AUTH_FAILED);
    }
}

#[test]
fn r4616_3_r5034_auth_13_255_octet_fields_via_continuation() {
    let long = "x".repeat(255);
    let mut d = Driver::new();
    assert_eq!(d.line("AUTH PLAIN"), "+ \r\n");
    let line = b64(format!("{long}\0{long}\0{long}").as_bytes());
    assert!(line.len() > 1000);
    assert_eq!(d.line(&line), OK);
    assert_eq!(d.logged_in.as_deref(), Some(long.as_str()));
}

#[test]
fn r4616_4_authzid() {
    let mut d = Driver::new();
    assert_eq!(
        d.line(&format!("AUTH PLAIN {}", b64(b"alice\0alice\0secret"))),
        OK
    );
    let mut d = Driver::new();
    assert_eq!(
        d.line(&format!("AUTH PLAIN {}", b64(b"Ursel\0alice\0secret"))),
        AUTH_FAILED
    );
}

#[test]
fn r4616_5_r5034_auth_15_preparation() {
    let mut d = Driver::new();
    // Password that prepares to empty.
    assert_eq!(
        d.line(&format!(
            "AUTH PLAIN {}",
            b64("\0alice\0\u{00AD}".as_bytes())
        )),
        AUTH_FAILED
    );
    // Prohibited control character in the authzid.
    assert_eq!(
        d.line(&format!("AUTH PLAIN {}", b64(b"a\x07b\0alice\0secret"))),
        AUTH_FAILED
    );
    // Soft hyphens vanish: `se\u{AD}cret` is `secret`.
    assert_eq!(
        d.line(&format!(
            "AUTH PLAIN {}",
            b64("\0alice\0se\u{00AD}cret".as_bytes())
        )),
        OK
    );
}

// ---- LOGIN ---------------------------------------------------------------------------

#[test]
fn rlogin_1_challenges() {
    let mut d = Driver::new();
    assert_eq!(d.line("AUTH LOGIN"), "+ VXNlcm5hbWU6\r\n");
    assert_eq!(d.line("dGlt"), "+ UGFzc3dvcmQ6\r\n");
    assert_eq!(d.line("dGFuc3RhYWZ0YW5zdGFhZg=="), OK);
    assert_eq!(d.logged_in.as_deref(), Some("tim"));
}

#[test]
fn rlogin_6_user_as_initial_response() {
    let mut d = Driver::new();
    assert_eq!(d.line("AUTH LOGIN dGlt"), "+ UGFzc3dvcmQ6\r\n");
    assert_eq!(d.line(&b64(b"wrong")), AUTH_FAILED);
    let (last, finish) = d.exchange(SaslClient::login("alice", "secret"), true);
    assert_eq!((last.as_str(), finish), (OK, Ok(())));
}

// ---- XOAUTH2 / OAUTHBEARER -----------------------------------------------------------

#[test]
fn xoa2_1_google_vector() {
    let mut d = Driver::new();
    let out = d.line("AUTH XOAUTH2 dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==");
    assert_eq!(out, OK);
    assert_eq!(d.logged_in.as_deref(), Some("someuser@example.com"));
}

#[test]
fn xoa2_2_error_json_then_empty_line_then_err() {
    let mut d = Driver::new();
    let out = d.line(&format!(
        "AUTH XOAUTH2 {}",
        b64(b"user=alice\x01auth=Bearer expired\x01\x01")
    ));
    assert_eq!(out, "+ eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=\r\n");
    assert_eq!(d.line(""), AUTH_FAILED);
    // The SaslClient answers the error with an empty line and reports it.
    let (last, finish) = d.exchange(SaslClient::xoauth2("alice", "expired"), true);
    assert_eq!(last, AUTH_FAILED);
    assert_eq!(finish, Err(SaslError::Incomplete));
}

#[test]
fn xoa2_3_4_two_step_form_and_long_tokens() {
    let mut d = Driver::new();
    let (last, finish) = d.exchange(SaslClient::xoauth2("alice", "good-token"), false);
    assert_eq!((last.as_str(), finish), (OK, Ok(())));
    // An initial response far over 255 octets is processed, not "line too long".
    let mut d = Driver::new();
    let token = "A".repeat(2000);
    let out = d.line(&format!(
        "AUTH XOAUTH2 {}",
        b64(format!("user=alice\x01auth=Bearer {token}\x01\x01").as_bytes())
    ));
    assert!(out.starts_with("+ "), "{out}");
    assert_eq!(d.line(""), AUTH_FAILED);
}

#[test]
fn r7628_2_curl_vector() {
    let mut d = Driver::new();
    // The curl vector says host=127.0.0.1 port=9001: a server configured so.
    let mut config = ServerConfig::new();
    config.sasl_mechanisms = vec![Mechanism::OAuthBearer];
    config.allow_plaintext_without_tls = true;
    d.conn = ServerConnection::new(Arc::new(config), Duration::ZERO, None).unwrap();
    d.send(b"");
    // HOST is pop.example.net, so the host check refuses it...
    let out = d.line("AUTH OAUTHBEARER bixhPXVzZXIsAWhvc3Q9MTI3LjAuMC4xAXBvcnQ9OTAwMQFhdXRoPUJlYXJlciBtRl85LkI1Zi00LjFKcU0BAQ==");
    assert_eq!(out, AUTH_FAILED);
    // ...and the same message for our host and port is accepted.
    let m = SaslClient::oauthbearer(Some("user"), "mF_9.B5f-4.1JqM", Some(HOST), Some(PORT))
        .initial_response()
        .unwrap();
    assert_eq!(d.line(&format!("AUTH OAUTHBEARER {}", b64(&m))), OK);
    assert_eq!(d.logged_in.as_deref(), Some("user"));
}

#[test]
fn r7628_3_unknown_keys_ignored() {
    let mut d = Driver::new();
    let m = b"n,,\x01foo=bar\x01auth=Bearer good-token\x01\x01";
    assert_eq!(d.line(&format!("AUTH OAUTHBEARER {}", b64(m))), OK);
    assert_eq!(d.logged_in.as_deref(), Some("alice"));
}

#[test]
fn r7628_4_host_checked() {
    let mut d = Driver::new();
    let m = b"n,,\x01host=evil.example\x01auth=Bearer good-token\x01\x01";
    assert_eq!(d.line(&format!("AUTH OAUTHBEARER {}", b64(m))), AUTH_FAILED);
    let m = b"n,,\x01port=110\x01auth=Bearer good-token\x01\x01";
    assert_eq!(d.line(&format!("AUTH OAUTHBEARER {}", b64(m))), AUTH_FAILED);
}

#[test]
fn r7628_5_error_json_then_x01_then_err() {
    let mut d = Driver::new();
    let m = b"n,a=alice,\x01auth=Bearer expired\x01\x01";
    let out = d.line(&format!("AUTH OAUTHBEARER {}", b64(m)));
    assert_eq!(out, "+ eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=\r\n");
    assert_eq!(d.line("AQ=="), AUTH_FAILED);
    // The client side: answers AQ== and surfaces the JSON.
    let mut client = SaslClient::oauthbearer(Some("alice"), "expired", None, None);
    let ir = client.initial_response().unwrap();
    assert_eq!(
        d.line(&format!("AUTH OAUTHBEARER {}", b64(&ir))),
        "+ eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=\r\n"
    );
    let answer = client
        .respond(&unb64("eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0="))
        .unwrap();
    assert_eq!(b64(&answer), "AQ==");
    assert_eq!(
        client.oauth_error(),
        Some(&br#"{"status":"invalid_token"}"#[..])
    );
    assert_eq!(d.line("AQ=="), AUTH_FAILED);
}

#[test]
fn r7628_6_single_x01_first_fails() {
    let mut d = Driver::new();
    assert_eq!(d.line("AUTH OAUTHBEARER AQ=="), AUTH_FAILED);
}

#[test]
fn oauthbearer_client_both_forms() {
    for inline in [true, false] {
        let mut d = Driver::new();
        let client = SaslClient::oauthbearer(Some("alice"), "good-token", Some(HOST), Some(PORT));
        let (last, finish) = d.exchange(client, inline);
        assert_eq!((last.as_str(), finish), (OK, Ok(())), "inline={inline}");
    }
}

// ---- EXTERNAL ------------------------------------------------------------------------

#[test]
fn r4422_ext_1_external() {
    let mut d = Driver::tls(Some("alice"));
    assert_eq!(d.line("AUTH EXTERNAL"), "+ \r\n");
    assert_eq!(d.line(""), OK);
    assert_eq!(d.logged_in.as_deref(), Some("alice"));
    let mut d = Driver::tls(Some("alice"));
    assert_eq!(d.line("AUTH EXTERNAL YWxpY2U="), OK);
    let mut d = Driver::tls(Some("alice"));
    assert_eq!(d.line("AUTH EXTERNAL ="), OK);
    let mut d = Driver::tls(Some("alice"));
    let (last, finish) = d.exchange(SaslClient::external(""), true);
    assert_eq!((last.as_str(), finish), (OK, Ok(())));
}

#[test]
fn r4422_ext_2_external_failures() {
    // No client certificate.
    let mut d = Driver::tls(None);
    assert_eq!(d.line("AUTH EXTERNAL ="), AUTH_FAILED);
    // Certificate of alice, authzid bob.
    let mut d = Driver::tls(Some("alice"));
    assert_eq!(
        d.line(&format!("AUTH EXTERNAL {}", b64(b"bob"))),
        AUTH_FAILED
    );
}

// ---- generic -------------------------------------------------------------------------

#[test]
fn every_mechanism_through_the_connection() {
    let clients = || {
        vec![
            SaslClient::plain("", "alice", "secret"),
            SaslClient::login("alice", "secret"),
            SaslClient::cram_md5("alice", "secret"),
            SaslClient::scram_sha1("alice", "secret", b"n1").unwrap(),
            SaslClient::scram_sha256("alice", "secret", b"n2").unwrap(),
            SaslClient::xoauth2("alice", "good-token"),
            SaslClient::oauthbearer(None, "good-token", None, None),
        ]
    };
    for inline in [true, false] {
        for client in clients() {
            let m = client.mechanism();
            let mut d = Driver::new();
            let (last, finish) = d.exchange(client, inline);
            assert_eq!((last.as_str(), finish), (OK, Ok(())), "{m} inline={inline}");
            assert_eq!(d.logged_in.as_deref(), Some("alice"), "{m}");
        }
    }
    let wrong = || {
        vec![
            SaslClient::plain("", "alice", "wrong"),
            SaslClient::login("alice", "wrong"),
            SaslClient::cram_md5("alice", "wrong"),
            SaslClient::scram_sha1("alice", "wrong", b"n1").unwrap(),
            SaslClient::scram_sha256("alice", "wrong", b"n2").unwrap(),
            SaslClient::xoauth2("alice", "wrong"),
            SaslClient::oauthbearer(None, "wrong", None, None),
        ]
    };
    for client in wrong() {
        let m = client.mechanism();
        let mut d = Driver::new();
        let (last, _) = d.exchange(client, true);
        assert_eq!(last, AUTH_FAILED, "{m}");
        assert_eq!(d.logged_in, None);
    }
}
