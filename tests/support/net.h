// Small loopback networking helpers shared by the test servers (sshd.h, storage_servers.h) and
// the TCP proxy (tcp_proxy.h).
#pragma once

#include <chrono>

namespace dupfs::test {

// A 127.0.0.1 port nobody listens on right now (bound to port 0 and released again, so another
// process may still take it before the caller does: servers retry on a new port).
int free_port();

// A blocking TCP connection to 127.0.0.1:port (SOCK_CLOEXEC); -1 if it fails.
int connect_loopback(int port);

// True once a TCP connection to 127.0.0.1:port is accepted; polls until `timeout`.
bool accepts_connections(int port, std::chrono::milliseconds timeout);

}  // namespace dupfs::test
