// A cross-process wake-up for endpoints whose CQ cannot sleep (shm: its wait object
// spins). Each endpoint binds an abstract unix datagram socket named after its fabric
// name; a sender rings the receiver's bell right after posting to it, so the receiver's
// progress thread can sleep on the bell instead of waking every few hundred microseconds
// to look. Abstract names leave no file behind and vanish with the process, so a
// restarted endpoint (same fabric name) gets the same bell. Best effort throughout: a
// bell that cannot be bound or rung only costs latency, never a message.
// Header-only: binding.gyp compiles addon.cc and fabric.cc.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

namespace rdma {

// The bell's address for the endpoint whose fabric name is `name` (fi_getname bytes;
// what a peer passes to fi_av_insert), up to its first NUL. A hash, because names can
// be longer than a socket path; a collision only makes a spurious wake-up or leaves
// the later endpoint without a bell.
inline socklen_t doorbellAddress(const uint8_t* name, size_t len, sockaddr_un* out) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (size_t i = 0; i < len && name[i] != 0; i++) {
    h ^= name[i];
    h *= 1099511628211ull;
  }
  std::memset(out, 0, sizeof *out);
  out->sun_family = AF_UNIX;
  // sun_path[0] == 0: the abstract namespace.
  const int n = std::snprintf(out->sun_path + 1, sizeof(out->sun_path) - 1, "hyb-bell-%016llx",
                              static_cast<unsigned long long>(h));
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
}

class Doorbell {
 public:
  Doorbell() = default;
  Doorbell(const Doorbell&) = delete;
  Doorbell& operator=(const Doorbell&) = delete;
  ~Doorbell() { close(); }

  // Binds this endpoint's bell; false when it cannot (the name is taken, no sockets).
  bool listen(const std::vector<uint8_t>& name) {
    sockaddr_un addr;
    const socklen_t len = doorbellAddress(name.data(), name.size(), &addr);
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
      ::close(fd);
      return false;
    }
    recvFd_ = fd;
    return true;
  }

  // The fd that turns readable when rung, or -1.
  int fd() const { return recvFd_; }

  // Consumes pending rings so the fd waits again. The socket queue is short (the
  // kernel's max_dgram_qlen), so this is a few reads at most.
  void drain() {
    if (recvFd_ < 0) return;
    char b[8];
    for (int i = 0; i < 64; i++)
      if (::recv(recvFd_, b, sizeof b, MSG_DONTWAIT) < 0) break;
  }

  // Rings a peer's bell. A full queue (EAGAIN) means it has rings still unread, so it
  // wakes anyway; a peer without a bell (ECONNREFUSED) naps on its own schedule.
  bool ring(const sockaddr_un& addr, socklen_t len) {
    if (sendFd_ < 0) {
      sendFd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (sendFd_ < 0) return false;
    }
    const char b = 1;
    return ::sendto(sendFd_, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr),
                    len) == 1;
  }

  void close() {
    if (recvFd_ >= 0) ::close(recvFd_);
    if (sendFd_ >= 0) ::close(sendFd_);
    recvFd_ = sendFd_ = -1;
  }

 private:
  int recvFd_ = -1;
  int sendFd_ = -1;
};

}  // namespace rdma
