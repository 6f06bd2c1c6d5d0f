//! POP3 on tokio: a thin driver around the sans-IO [`pop3_proto`] machines.
//!
//! - [`server::ServerSession`] takes an accepted stream (plain, implicit TLS, or plain with
//!   STLS), drives [`pop3_proto::ServerConnection`] and hands the application its decisions
//!   one at a time ([`pop3_proto::server::ServerDecision`]): check these credentials, send
//!   message *i*, commit. It upgrades to TLS at STLS and honours the autologout timer.
//! - [`client::Client`] connects plain, with implicit TLS, or plain then STLS, logs in
//!   (USER/PASS, APOP, any SASL mechanism of the core) and runs every command; RETR and TOP
//!   stream into any [`tokio::io::AsyncWrite`], never buffered whole.
//!
//! TLS is rustls through tokio-rustls. The crate enables no crypto provider: callers pass a
//! ready `Arc<rustls::ServerConfig>` / `Arc<rustls::ClientConfig>`.
//!
//! All protocol logic is in `pop3-proto`; this crate only moves bytes, sleeps until the
//! machine's deadline, and swaps the transport at STLS.
#![forbid(unsafe_code)]

pub mod client;
pub mod server;
mod transport;

pub use client::{Client, Error};
pub use server::ServerSession;
pub use transport::Transport;

/// The read buffer size of both drivers: one syscall's worth of input.
const READ_BUFFER: usize = 16 * 1024;

/// Longest a TLS handshake may take (implicit TLS or after STLS) before the connection is
/// dropped: a peer that stalls the handshake holds no session for long.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
