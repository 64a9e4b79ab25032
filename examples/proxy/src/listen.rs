//! The listening socket every worker thread binds (the proxy's, and the benchmark tools' TCP relay).

/// A listening socket on `addr` that other threads may bind too (`SO_REUSEPORT`: the kernel
/// spreads connections over them).
pub fn bind_shared(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}
