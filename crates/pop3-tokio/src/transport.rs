//! [`Transport`]: a stream that is plain now and may become TLS (STLS).

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The byte stream under a session: plaintext, or TLS on either side.
#[derive(Debug)]
#[non_exhaustive]
pub enum Transport<S> {
    /// Plaintext.
    Plain(S),
    /// TLS, server side.
    ServerTls(Box<tokio_rustls::server::TlsStream<S>>),
    /// TLS, client side.
    ClientTls(Box<tokio_rustls::client::TlsStream<S>>),
    /// Only while a handshake takes the stream out; never observed afterwards.
    Upgrading,
}

impl<S> Transport<S> {
    /// True once TLS protects the stream.
    pub const fn is_tls(&self) -> bool {
        matches!(self, Self::ServerTls(_) | Self::ClientTls(_))
    }
}

fn upgrading() -> io::Error {
    io::Error::other("transport used during a TLS upgrade")
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Transport<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::ServerTls(s) => Pin::new(s).poll_read(cx, buf),
            Self::ClientTls(s) => Pin::new(s).poll_read(cx, buf),
            Self::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Transport<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::ServerTls(s) => Pin::new(s).poll_write(cx, buf),
            Self::ClientTls(s) => Pin::new(s).poll_write(cx, buf),
            Self::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::ServerTls(s) => Pin::new(s).poll_flush(cx),
            Self::ClientTls(s) => Pin::new(s).poll_flush(cx),
            Self::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::ServerTls(s) => Pin::new(s).poll_shutdown(cx),
            Self::ClientTls(s) => Pin::new(s).poll_shutdown(cx),
            Self::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }
}
