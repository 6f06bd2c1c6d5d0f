//! The tokio client against the tokio server over loopback, in plaintext, implicit TLS and
//! STLS: login, LIST, UIDL, RETR of a 5 MB message full of dot lines (byte-exact), DELE,
//! QUIT, reconnect and check; and a dropped connection after DELE deletes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use std::{sync::Arc, time::Duration};

use pop3_maildrop::{
    MemoryStore,
    service::{MailService, Next, PlainPasswords},
};
use pop3_proto::{
    client::ClientConfig,
    server::{ServerConfig, TlsMode},
};
use pop3_tokio::{Client, Error, ServerSession};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

struct Tls {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

fn tls() -> Tls {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Tls {
        server: Arc::new(server),
        client: Arc::new(client),
    }
}

/// 5 MB with many lines that start with dots, stored with bare LF.
fn big_message() -> Vec<u8> {
    let mut m = b"Subject: big\n\n".to_vec();
    let mut i = 0u64;
    while m.len() < 5 * 1024 * 1024 {
        match i % 4 {
            0 => m.extend_from_slice(b".\n"),
            1 => m.extend_from_slice(b"..leading dots\n"),
            2 => m.extend_from_slice(
                format!("line {i} with some text to fill the message up\n").as_bytes(),
            ),
            _ => m.extend_from_slice(b".x\n"),
        }
        i += 1;
    }
    m
}

fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() * 2);
    for &b in raw {
        if b == b'\n' {
            out.extend_from_slice(b"\r\n");
        } else {
            out.push(b);
        }
    }
    out
}

/// Serves connections until the test ends.
async fn server(
    mode: TlsMode,
    tls: Arc<rustls::ServerConfig>,
    store: Arc<MemoryStore>,
) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = ServerConfig::new();
    config.tls = mode;
    let config = Arc::new(config);
    tokio::spawn(async move {
        let users = Arc::new(PlainPasswords::new([("alice", "secret")]));
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (config, tls, store, users) =
                (config.clone(), tls.clone(), store.clone(), users.clone());
            tokio::spawn(async move {
                let mut session = ServerSession::new(stream, config, None, Some(tls))
                    .await
                    .unwrap();
                let mut service = MailService::new(&*store, &*users, b"nonce", "localhost");
                loop {
                    let Ok(decision) = session.next_decision().await else {
                        return;
                    };
                    let sent = match service.decide(session.connection(), decision) {
                        Next::SendMessage(reader) => session.send_body_blocking(reader).await,
                        Next::Closed(_) => return,
                        _ => Ok(()),
                    };
                    if sent.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

async fn connect(mode: TlsMode, addr: std::net::SocketAddr, tls: &Tls) -> Client<TcpStream> {
    let config = ClientConfig::new();
    let timeout = Duration::from_secs(10);
    let name = ServerName::try_from("localhost").unwrap();
    match mode {
        TlsMode::Implicit => Client::connect_tls(addr, name, tls.client.clone(), config, timeout)
            .await
            .unwrap(),
        _ => {
            let mut c = Client::connect(addr, config, timeout).await.unwrap();
            let caps = c.capa().await.unwrap();
            assert!(caps.stls && !caps.user, "USER hidden before TLS");
            assert!(
                matches!(c.login("alice", "secret").await, Err(Error::Refused(_))),
                "no password over plaintext"
            );
            c.stls(name, tls.client.clone()).await.unwrap();
            assert!(c.connection().capabilities().is_none());
            c
        }
    }
}

async fn scenario(mode: TlsMode) {
    let tls = tls();
    let store = Arc::new(MemoryStore::new());
    let big = big_message();
    store.deliver("alice", b"Subject: one\n\nfirst\n");
    store.deliver("alice", &big);
    store.deliver("alice", b"Subject: three\n\n.\n..\nthird");
    let addr = server(mode, tls.server.clone(), store.clone()).await;

    let mut c = connect(mode, addr, &tls).await;
    assert!(c.capa().await.unwrap().user, "USER offered over TLS");
    c.login("alice", "secret").await.unwrap();
    let list = c.list().await.unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[1].1, crlf(&big).len() as u64);
    let uids = c.uidl().await.unwrap();
    assert_eq!(uids.len(), 3);
    let mut got = Vec::new();
    let n = c.retr(2, &mut got).await.unwrap();
    assert_eq!(n as usize, got.len());
    assert!(got == crlf(&big), "RETR 2 is byte-exact after unstuffing");
    let mut third = Vec::new();
    c.retr(3, &mut third).await.unwrap();
    assert_eq!(third, b"Subject: three\r\n\r\n.\r\n..\r\nthird\r\n");
    c.dele(2).await.unwrap();
    c.quit().await.unwrap();

    let mut c = connect(mode, addr, &tls).await;
    c.login("alice", "secret").await.unwrap();
    assert_eq!(c.stat().await.unwrap().0, 2, "message 2 is gone after QUIT");
    assert_eq!(
        c.uidl()
            .await
            .unwrap()
            .iter()
            .map(|u| &u.1)
            .collect::<Vec<_>>(),
        [&uids[0].1, &uids[2].1]
    );
    c.dele(1).await.unwrap();
    drop(c); // dropped without QUIT: nothing may be deleted
    // The server notices the drop and releases the maildrop.
    for _ in 0..100 {
        if !store.is_locked("alice") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut c = connect(mode, addr, &tls).await;
    c.login("alice", "secret").await.unwrap();
    assert_eq!(
        c.stat().await.unwrap().0,
        2,
        "a dropped connection deletes nothing"
    );
    c.quit().await.unwrap();
}

#[tokio::test]
async fn plain_with_plaintext_allowed() {
    let store = Arc::new(MemoryStore::new());
    store.deliver("alice", b"Subject: x\n\nbody\n");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let store2 = store.clone();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut config = ServerConfig::new();
        config.allow_plaintext_without_tls = true;
        let users = PlainPasswords::new([("alice", "secret")]);
        let mut session =
            ServerSession::new(stream, Arc::new(config), Some(b"<1.2@localhost>"), None)
                .await
                .unwrap();
        let mut service = MailService::new(&*store2, &users, b"nonce", "localhost");
        loop {
            let decision = session.next_decision().await.unwrap();
            match service.decide(session.connection(), decision) {
                Next::SendMessage(r) => session.send_body_blocking(r).await.unwrap(),
                Next::Closed(_) => return,
                _ => {}
            }
        }
    });
    let mut config = ClientConfig::new();
    config.allow_plaintext_without_tls = true;
    config.allow_apop_without_tls = true;
    let mut c = Client::connect(addr, config, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        matches!(c.login("alice", "wrong").await, Err(Error::Server(e)) if e.code.as_deref() == Some("AUTH"))
    );
    c.apop("alice", "secret").await.unwrap();
    let mut top = Vec::new();
    c.top(1, 0, &mut top).await.unwrap();
    assert_eq!(top, b"Subject: x\r\n\r\n");
    c.noop().await.unwrap();
    c.dele(1).await.unwrap();
    c.rset().await.unwrap();
    assert_eq!(c.list_one(1).await.unwrap(), 20);
    assert!(matches!(c.list_one(2).await, Err(Error::Server(_))));
    c.quit().await.unwrap();
    assert_eq!(
        store.messages("alice").unwrap().len(),
        1,
        "RSET kept the message"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls() {
    scenario(TlsMode::Implicit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stls() {
    scenario(TlsMode::Stls).await;
}
