//! [`ServerSession`]: one POP3 server connection on tokio.

use std::{io, sync::Arc, time::Duration};

use pop3_proto::{
    ServerConnection,
    dot::Progress,
    server::{ServerConfig, ServerDecision, TlsMode},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    time::Instant,
};
use tokio_rustls::TlsAcceptor;

use crate::{READ_BUFFER, Transport};

/// A POP3 server session over an accepted stream.
///
/// ```no_run
/// # async fn serve(stream: tokio::net::TcpStream) -> std::io::Result<()> {
/// use std::sync::Arc;
/// use pop3_proto::{Listing, server::{CommitOutcome, LoginRejection, ServerConfig, ServerDecision}};
/// use pop3_tokio::ServerSession;
///
/// let mut session = ServerSession::new(stream, Arc::new(ServerConfig::new()), None, None).await?;
/// loop {
///     match session.next_decision().await? {
///         ServerDecision::CheckPassword { user, password } => {
///             let ok = user == "alice" && password.expose() == b"secret";
///             let conn = session.connection();
///             if ok { conn.accept_login(Listing::new()) } else { conn.reject_login(LoginRejection::BadCredentials) }
///                 .expect("a login decision is pending");
///         }
///         ServerDecision::Commit { .. } => {
///             session.connection().commit_done(CommitOutcome::Committed).expect("pending");
///         }
///         ServerDecision::Closed(_) => return Ok(()),
///         _ => {}
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct ServerSession<S> {
    conn: ServerConnection,
    io: Transport<S>,
    tls: Option<Arc<rustls::ServerConfig>>,
    out: Vec<u8>,
    read_buf: Box<[u8]>,
    epoch: Instant,
    closed: Option<pop3_proto::server::CloseReason>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ServerSession<S> {
    /// Starts a session on `stream`. With [`TlsMode::Implicit`] the TLS handshake runs first
    /// (RFC 8314); with [`TlsMode::Stls`] the handshake runs when the client asks. Both need
    /// `tls`. `apop_timestamp` (fresh per connection) enables APOP.
    pub async fn new(
        stream: S,
        config: Arc<ServerConfig>,
        apop_timestamp: Option<&[u8]>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<Self> {
        let needs_tls = config.tls != TlsMode::None;
        if needs_tls && tls.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TLS mode without a rustls ServerConfig",
            ));
        }
        let io = match (&tls, config.tls) {
            (Some(tls), TlsMode::Implicit) => {
                let acceptor = TlsAcceptor::from(Arc::clone(tls));
                let handshake =
                    tokio::time::timeout(crate::HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                let tls = handshake.await.map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
                })??;
                Transport::ServerTls(Box::new(tls))
            }
            _ => Transport::Plain(stream),
        };
        let epoch = Instant::now();
        let conn = ServerConnection::new(config, Duration::ZERO, apop_timestamp)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(Self {
            conn,
            io,
            tls,
            out: Vec::with_capacity(READ_BUFFER),
            read_buf: vec![0; READ_BUFFER].into_boxed_slice(),
            epoch,
            closed: None,
        })
    }

    /// The machine, to answer the decision [`next_decision`](Self::next_decision) returned.
    pub fn connection(&mut self) -> &mut ServerConnection {
        &mut self.conn
    }

    /// The transport (e.g. to read the TLS client certificate for SASL EXTERNAL).
    pub const fn transport(&self) -> &Transport<S> {
        &self.io
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Drives the connection until the application must decide something. STLS is handled
    /// here. After [`ServerDecision::Closed`] the output has been flushed and the transport
    /// shut down; later calls return the same `Closed`.
    pub async fn next_decision(&mut self) -> io::Result<ServerDecision> {
        if let Some(reason) = self.closed {
            return Ok(ServerDecision::Closed(reason));
        }
        loop {
            if let Some(event) = self.conn.poll_event() {
                match ServerDecision::from(event) {
                    ServerDecision::StartTls => {
                        self.flush().await?;
                        self.start_tls().await?;
                    }
                    ServerDecision::Closed(reason) => {
                        self.closed = Some(reason);
                        self.flush().await?;
                        // The peer may already be gone; closing is best effort.
                        let _ = self.io.shutdown().await;
                        return Ok(ServerDecision::Closed(reason));
                    }
                    decision => return Ok(decision),
                }
                continue;
            }
            if self.flush().await? {
                continue;
            }
            self.wait().await?;
        }
    }

    /// Streams the message for the pending [`ServerDecision::RetrieveMessage`] from
    /// `reader`, then ends it. A read error after the body started aborts the connection
    /// (POP3 cannot report it), before it answers `-ERR`.
    pub async fn send_body<R: AsyncRead + Unpin>(&mut self, mut reader: R) -> io::Result<()> {
        let mut chunk = vec![0; 64 * 1024];
        loop {
            let n = match reader.read(&mut chunk).await {
                Ok(n) => n,
                Err(e) => {
                    self.abort_body()?;
                    return Err(e);
                }
            };
            if n == 0 || self.chunk(&chunk[..n])? == Progress::Done {
                break;
            }
            self.flush().await?;
        }
        self.conn.body_end().map_err(misuse)?;
        Ok(())
    }

    /// Like [`send_body`](Self::send_body) for a blocking reader (a file from a maildrop
    /// whose pages are usually cached); each 64 KiB read runs inline on the task.
    pub async fn send_body_blocking<R: io::Read + Unpin>(&mut self, reader: R) -> io::Result<()> {
        self.send_body(InlineRead(reader)).await
    }

    fn chunk(&mut self, data: &[u8]) -> io::Result<Progress> {
        self.conn.body_chunk(data).map_err(misuse)
    }

    fn abort_body(&mut self) -> io::Result<()> {
        // Before the first chunk a clean -ERR is still possible.
        if self
            .conn
            .message_unavailable(pop3_proto::server::Unavailable::StorageError)
            .is_err()
        {
            self.conn.body_abort().map_err(misuse)?;
        }
        Ok(())
    }

    /// Writes whatever the machine has queued. Returns true if anything was written.
    async fn flush(&mut self) -> io::Result<bool> {
        let mut wrote = false;
        while self.conn.poll_transmit(&mut self.out) > 0 {
            self.io.write_all(&self.out).await?;
            self.out.clear();
            wrote = true;
        }
        if wrote {
            self.io.flush().await?;
        }
        Ok(wrote)
    }

    /// Waits for input or the machine's deadline.
    async fn wait(&mut self) -> io::Result<()> {
        let deadline = self.conn.poll_timeout();
        if !self.conn.wants_read() && deadline.is_none() {
            return Err(io::Error::other(
                "server session stalled: nothing to read, no timer",
            ));
        }
        let sleep_until = self.epoch + deadline.unwrap_or(Duration::MAX / 4);
        tokio::select! {
            read = self.io.read(&mut self.read_buf), if self.conn.wants_read() => {
                let now = self.epoch.elapsed();
                match read {
                    Ok(0) => self.conn.receive_eof(now),
                    Ok(n) => self.conn.receive(now, &self.read_buf[..n]),
                    // A reset peer is an end like any other: no UPDATE.
                    Err(_) => self.conn.receive_eof(now),
                }
            }
            () = tokio::time::sleep_until(sleep_until), if deadline.is_some() => {
                let now = self.now();
                self.conn.handle_timeout(now);
            }
        }
        Ok(())
    }

    async fn start_tls(&mut self) -> io::Result<()> {
        let Some(acceptor) = self.tls.clone().map(TlsAcceptor::from) else {
            return Err(io::Error::other(
                "STLS accepted without a TLS configuration",
            ));
        };
        let Transport::Plain(stream) = std::mem::replace(&mut self.io, Transport::Upgrading) else {
            return Err(io::Error::other(
                "STLS on a transport that is not plaintext",
            ));
        };
        let handshake = tokio::time::timeout(crate::HANDSHAKE_TIMEOUT, acceptor.accept(stream));
        let tls = handshake
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        self.io = Transport::ServerTls(Box::new(tls));
        self.conn.tls_established().map_err(misuse)
    }
}

fn misuse(e: pop3_proto::server::MisuseError) -> io::Error {
    io::Error::other(e)
}

/// A blocking reader used as an `AsyncRead`: each poll reads synchronously.
struct InlineRead<R>(R);

impl<R: io::Read + Unpin> AsyncRead for InlineRead<R> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = loop {
            match this.0.read(buf.initialize_unfilled()) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        std::task::Poll::Ready(result.map(|n| buf.advance(n)))
    }
}
