//! [`Client`]: a POP3 client on tokio.

use std::{fmt, io, sync::Arc, time::Duration};

use pop3_proto::{
    ClientConnection, Command, Secret,
    client::{
        Capabilities, ClientCloseReason, ClientConfig, ClientError, ClientEvent, Collected,
        Collector, CommandHandle, ErrReply, ReplyProgress,
    },
    sasl::SaslClient,
};
use rustls::pki_types::ServerName;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpStream, ToSocketAddrs},
    time::Instant,
};
use tokio_rustls::TlsConnector;

use crate::{READ_BUFFER, Transport};

/// Why a client call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The socket or TLS failed.
    Io(io::Error),
    /// Connecting took longer than allowed.
    ConnectTimeout,
    /// The server answered `-ERR`.
    Server(ErrReply),
    /// The session ended (timeout, protocol error, server gone, refused greeting…).
    Closed(ClientCloseReason),
    /// The call was refused locally (e.g. credentials without TLS).
    Refused(ClientError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::ConnectTimeout => f.write_str("connection timed out"),
            Self::Server(e) => write!(f, "server said {e}"),
            Self::Closed(r) => write!(f, "session ended: {r}"),
            Self::Refused(e) => write!(f, "refused: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Self {
        Self::Refused(e)
    }
}

/// A POP3 client session.
///
/// ```no_run
/// # async fn fetch() -> Result<(), pop3_tokio::Error> {
/// use pop3_proto::client::ClientConfig;
/// let mut config = ClientConfig::new();
/// config.allow_plaintext_without_tls = true; // loopback test server only
/// let mut client = pop3_tokio::Client::connect("127.0.0.1:1110", config, std::time::Duration::from_secs(10)).await?;
/// client.login("alice", "secret").await?;
/// let (count, _octets) = client.stat().await?;
/// let mut message = Vec::new();
/// if count > 0 {
///     client.retr(1, &mut message).await?;
/// }
/// client.quit().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Client<S> {
    conn: ClientConnection,
    io: Transport<S>,
    out: Vec<u8>,
    read_buf: Box<[u8]>,
    body: Vec<u8>,
    epoch: Instant,
    greeting: String,
}

impl Client<TcpStream> {
    /// Connects in plaintext (port 110) and reads the greeting.
    pub async fn connect(
        addr: impl ToSocketAddrs,
        config: ClientConfig,
        connect_timeout: Duration,
    ) -> Result<Self, Error> {
        let stream = tcp(addr, connect_timeout).await?;
        Self::from_transport(Transport::Plain(stream), config).await
    }

    /// Connects with implicit TLS (port 995, RFC 8314) and reads the greeting.
    pub async fn connect_tls(
        addr: impl ToSocketAddrs,
        server_name: ServerName<'static>,
        tls: Arc<rustls::ClientConfig>,
        config: ClientConfig,
        connect_timeout: Duration,
    ) -> Result<Self, Error> {
        let stream = tcp(addr, connect_timeout).await?;
        let tls = tokio::time::timeout(
            connect_timeout,
            TlsConnector::from(tls).connect(server_name, stream),
        )
        .await
        .map_err(|_| Error::ConnectTimeout)??;
        let mut client = Self::from_transport(Transport::ClientTls(Box::new(tls)), config).await?;
        client.conn.set_secure();
        Ok(client)
    }
}

async fn tcp(addr: impl ToSocketAddrs, timeout: Duration) -> Result<TcpStream, Error> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| Error::ConnectTimeout)??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Runs a session over any stream (plaintext); reads the greeting.
    pub async fn from_stream(stream: S, config: ClientConfig) -> Result<Self, Error> {
        Self::from_transport(Transport::Plain(stream), config).await
    }

    async fn from_transport(io: Transport<S>, config: ClientConfig) -> Result<Self, Error> {
        let epoch = Instant::now();
        let mut client = Self {
            conn: ClientConnection::new(config, Duration::ZERO),
            io,
            out: Vec::new(),
            read_buf: vec![0; READ_BUFFER].into_boxed_slice(),
            body: Vec::new(),
            epoch,
            greeting: String::new(),
        };
        loop {
            while let Some(event) = client.conn.poll_event() {
                match event {
                    ClientEvent::Greeting(g) => {
                        client.greeting = String::from_utf8_lossy(g.status.text).into_owned();
                        if g.status.is_ok() {
                            return Ok(client);
                        }
                    }
                    ClientEvent::Closed(reason) => return Err(Error::Closed(reason)),
                    _ => {}
                }
            }
            client.read_more().await?;
        }
    }

    /// The greeting text.
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// The machine (capabilities, APOP timestamp, state).
    pub const fn connection(&self) -> &ClientConnection {
        &self.conn
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// `CAPA`: the server's capabilities (also cached in the machine).
    pub async fn capa(&mut self) -> Result<Capabilities, Error> {
        self.command(Command::Capa).await?;
        Ok(self.conn.capabilities().cloned().unwrap_or_default())
    }

    /// `STLS` and the TLS handshake (RFC 2595); capabilities learned before are dropped.
    pub async fn stls(
        &mut self,
        server_name: ServerName<'static>,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<(), Error> {
        let handle = self.conn.stls(self.now())?;
        self.run(handle, None::<&mut tokio::io::Sink>).await?;
        while let Some(event) = self.conn.poll_event() {
            if matches!(event, ClientEvent::StartTls) {
                break;
            }
        }
        let Transport::Plain(stream) = std::mem::replace(&mut self.io, Transport::Upgrading) else {
            return Err(Error::Refused(ClientError::StlsNotAllowed));
        };
        let handshake = TlsConnector::from(tls).connect(server_name, stream);
        let tls = tokio::time::timeout(crate::HANDSHAKE_TIMEOUT, handshake)
            .await
            .map_err(|_| Error::ConnectTimeout)??;
        self.io = Transport::ClientTls(Box::new(tls));
        self.conn.tls_established()?;
        Ok(())
    }

    /// `USER` + `PASS` (refused over plaintext unless the config allows it).
    pub async fn login(&mut self, user: &str, password: &str) -> Result<(), Error> {
        self.command(Command::User(user)).await?;
        self.command(Command::Pass(Secret::new(password.as_bytes())))
            .await?;
        Ok(())
    }

    /// `APOP` with the greeting's timestamp.
    pub async fn apop(&mut self, user: &str, secret: &str) -> Result<(), Error> {
        let handle = self.conn.apop(self.now(), user, secret.as_bytes())?;
        self.run(handle, None::<&mut tokio::io::Sink>)
            .await
            .map(drop)
    }

    /// `AUTH` with any SASL mechanism of the core.
    pub async fn authenticate(&mut self, mechanism: SaslClient) -> Result<(), Error> {
        let handle = self.conn.authenticate(self.now(), mechanism)?;
        self.run(handle, None::<&mut tokio::io::Sink>)
            .await
            .map(drop)
    }

    /// `STAT`: (messages, octets).
    pub async fn stat(&mut self) -> Result<(u64, u64), Error> {
        let r = self.command(Command::Stat).await?;
        Ok(r.stat.unwrap_or_default())
    }

    /// `LIST`: (message number, size) of every message.
    pub async fn list(&mut self) -> Result<Vec<(u32, u64)>, Error> {
        Ok(self.command(Command::List(None)).await?.scans)
    }

    /// `LIST n`: the size of one message.
    pub async fn list_one(&mut self, message: u32) -> Result<u64, Error> {
        let r = self.command(Command::List(Some(message))).await?;
        Ok(r.scans.first().map_or(0, |s| s.1))
    }

    /// `UIDL`: (message number, unique id) of every message.
    pub async fn uidl(&mut self) -> Result<Vec<(u32, Vec<u8>)>, Error> {
        Ok(self.command(Command::Uidl(None)).await?.uids)
    }

    /// `UIDL n`: one message's unique id.
    pub async fn uidl_one(&mut self, message: u32) -> Result<Vec<u8>, Error> {
        let r = self.command(Command::Uidl(Some(message))).await?;
        Ok(r.uids.into_iter().next().map(|u| u.1).unwrap_or_default())
    }

    /// `RETR n`, streamed into `out` dot-unstuffed; returns the bytes written. If this fails
    /// midway, what was written is incomplete.
    pub async fn retr<W: AsyncWrite + Unpin>(
        &mut self,
        message: u32,
        out: &mut W,
    ) -> Result<u64, Error> {
        self.streamed(Command::Retr(message), out).await
    }

    /// `TOP n lines`, streamed into `out`.
    pub async fn top<W: AsyncWrite + Unpin>(
        &mut self,
        message: u32,
        lines: u64,
        out: &mut W,
    ) -> Result<u64, Error> {
        self.streamed(
            Command::Top {
                msg: message,
                lines,
            },
            out,
        )
        .await
    }

    /// `DELE n`.
    pub async fn dele(&mut self, message: u32) -> Result<(), Error> {
        self.command(Command::Dele(message)).await.map(drop)
    }

    /// `RSET`.
    pub async fn rset(&mut self) -> Result<(), Error> {
        self.command(Command::Rset).await.map(drop)
    }

    /// `NOOP`.
    pub async fn noop(&mut self) -> Result<(), Error> {
        self.command(Command::Noop).await.map(drop)
    }

    /// `QUIT`: the server commits deletions before it answers `+OK`; an `Err` means they
    /// may not have been committed.
    pub async fn quit(mut self) -> Result<(), Error> {
        self.command(Command::Quit).await?;
        let _ = self.io.shutdown().await;
        Ok(())
    }

    /// Sends any command and gathers its reply (bodies of RETR/TOP are discarded; use
    /// [`retr`](Self::retr)).
    pub async fn command(&mut self, command: Command<'_>) -> Result<Collected, Error> {
        let handle = self.conn.send(self.now(), command)?;
        self.run(handle, None::<&mut tokio::io::Sink>).await
    }

    async fn streamed<W: AsyncWrite + Unpin>(
        &mut self,
        command: Command<'_>,
        out: &mut W,
    ) -> Result<u64, Error> {
        let handle = self.conn.send(self.now(), command)?;
        let mut written = 0;
        self.run_counting(handle, Some(out), &mut written).await?;
        Ok(written)
    }

    async fn run<W: AsyncWrite + Unpin>(
        &mut self,
        handle: CommandHandle,
        out: Option<&mut W>,
    ) -> Result<Collected, Error> {
        let mut written = 0;
        self.run_counting(handle, out, &mut written).await
    }

    /// Drives the connection until `handle`'s reply is complete.
    async fn run_counting<W: AsyncWrite + Unpin>(
        &mut self,
        handle: CommandHandle,
        mut out: Option<&mut W>,
        written: &mut u64,
    ) -> Result<Collected, Error> {
        let mut collector = Collector::new(handle);
        loop {
            while self.conn.poll_transmit(&mut self.out) > 0 {
                self.io.write_all(&self.out).await?;
                self.out.clear();
            }
            self.io.flush().await?;
            let mut done = None;
            while let Some(event) = self.conn.poll_event() {
                match collector.feed(event) {
                    ReplyProgress::Pending => {}
                    ReplyProgress::Body(data) => self.body.extend_from_slice(data),
                    ReplyProgress::Done(result) => {
                        done = Some(result.map_err(Error::Server));
                        break;
                    }
                    ReplyProgress::Closed(reason) => {
                        done = Some(Err(Error::Closed(reason)));
                        break;
                    }
                }
            }
            // Body pieces borrow the machine's buffer: they are copied out per batch and
            // written here, so memory stays at one receive buffer's worth.
            if !self.body.is_empty() {
                if let Some(w) = out.as_deref_mut() {
                    w.write_all(&self.body).await?;
                }
                *written += self.body.len() as u64;
                self.body.clear();
            }
            if let Some(result) = done {
                if let Some(w) = out.as_deref_mut() {
                    w.flush().await?;
                }
                return result;
            }
            self.read_more().await?;
        }
    }

    /// Waits for input or the machine's deadline.
    async fn read_more(&mut self) -> Result<(), Error> {
        let deadline = self.conn.poll_timeout();
        let sleep_until = self.epoch + deadline.unwrap_or(Duration::MAX / 4);
        tokio::select! {
            read = self.io.read(&mut self.read_buf) => {
                let now = self.epoch.elapsed();
                match read {
                    Ok(0) | Err(_) => self.conn.receive_eof(now),
                    Ok(n) => self.conn.receive(now, &self.read_buf[..n]),
                }
            }
            () = tokio::time::sleep_until(sleep_until), if deadline.is_some() => {
                let now = self.now();
                self.conn.handle_timeout(now);
            }
        }
        Ok(())
    }
}
