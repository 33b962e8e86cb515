//! Loopback ports for the servers a test starts.

use std::net::TcpListener;

/// A TCP port free on 127.0.0.1 now (the system's pick; free until someone binds it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}
