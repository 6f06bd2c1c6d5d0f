//! Sans-IO POP3: the protocol as pure state machines, for servers and clients.
//!
//! This crate parses and encodes every byte of POP3 (RFC 1939) and its extensions (CAPA and
//! response codes, RFC 2449 and RFC 3206; SASL, RFC 5034; STLS, RFC 2595; UTF8 and LANG,
//! RFC 6856) and runs the session logic, but it never touches a socket, a clock, a thread or
//! a file. Adapters (`pop3-tokio`, `pop3-async-std`, `pop3-blocking`) move the bytes;
//! applications answer the decisions the machines ask for.
//!
//! | module | what lives there |
//! |---|---|
//! | [`line`](mod@line) | CRLF framing with explicit limits |
//! | [`command`] | [`Command`]: parse (borrowing) and encode |
//! | [`response`] | status lines, response codes, greeting, CAPA lines |
//! | [`dot`] | streaming dot-stuffing (server) and unstuffing (client) |
//! | [`apop`] | the APOP digest |
//! | [`sasl`] | SASL mechanism names and RFC 5034 framing |
//! | [`maildrop`] | [`Listing`]: message sizes and unique ids |
//! | [`server`] | [`ServerConnection`]: the server session machine |
//! | [`client`] | [`ClientConnection`]: the client session machine |
//!
//! # The drive loop
//!
//! Both sides follow one contract, expressed by [`Connection`]: after every input
//! ([`Connection::receive`], [`Connection::receive_eof`], [`Connection::handle_timeout`], or
//! an answer to an event), drain [`Connection::poll_event`] and [`Connection::poll_transmit`]
//! until neither yields anything, then wait for input or until [`Connection::poll_timeout`].
//! Time is a [`Duration`] since an epoch the adapter picks; the machines
//! never read a clock.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use pop3_proto::{Connection, server::{ServerConfig, ServerConnection, ServerEvent}};
//!
//! let mut conn = ServerConnection::new(Arc::new(ServerConfig::new()), Duration::ZERO, None).unwrap();
//! let mut wire = Vec::new();
//! conn.receive(Duration::ZERO, b"CAPA\r\nQUIT\r\n");
//! loop {
//!     let mut progressed = false;
//!     while let Some(event) = conn.poll_event() {
//!         progressed = true;
//!         if let ServerEvent::Closed(reason) = event {
//!             println!("closed: {reason}");
//!         }
//!     }
//!     progressed |= conn.poll_transmit(&mut wire) > 0;
//!     if !progressed {
//!         break;
//!     }
//! }
//! assert!(wire.starts_with(b"+OK POP3 server ready\r\n+OK Capability list follows."));
//! assert!(wire.ends_with(b".\r\n+OK Logging out.\r\n"));
//! assert!(conn.is_closed());
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
// Set here rather than workspace-wide: they matter for this no_std crate and would only
// be noise in the std adapters and binaries.
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

extern crate alloc;

use alloc::vec::Vec;
use core::time::Duration;

pub mod apop;
pub mod client;
pub mod command;
pub mod dot;
mod fmt;
pub mod line;
pub mod maildrop;
mod parsed;
pub mod response;
pub mod sasl;
mod secret;
pub mod server;

pub use client::{ClientConfig, ClientConnection, ClientEvent};
pub use command::{Command, CommandError};
pub use maildrop::Listing;
pub use parsed::Parsed;
pub use secret::Secret;
pub use server::{ServerConfig, ServerConnection, ServerEvent};

/// The contract both session machines implement, so an adapter's driver is written once.
pub trait Connection {
    /// What the machine asks of the application; borrows the machine's buffers.
    type Event<'a>
    where
        Self: 'a;

    /// Feeds bytes received from the peer.
    fn receive(&mut self, now: Duration, bytes: &[u8]);
    /// The peer closed its sending side.
    fn receive_eof(&mut self, now: Duration);
    /// The next event, if any.
    fn poll_event(&mut self) -> Option<Self::Event<'_>>;
    /// Appends bytes to send; returns how many (0: nothing to send).
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize;
    /// When to call [`handle_timeout`](Self::handle_timeout).
    fn poll_timeout(&self) -> Option<Duration>;
    /// Advances time; early or repeated calls do nothing.
    fn handle_timeout(&mut self, now: Duration);
    /// False while the adapter should not read from the peer.
    fn wants_read(&self) -> bool;
    /// True once the session is over (output may still be waiting).
    fn is_closed(&self) -> bool;
}
