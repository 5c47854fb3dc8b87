// The plain (non-TLS) ClientStream: a non-blocking socket read and written with read(2)/write(2).
//
// Invariants:
//  - the fd is owned from construction until Release() (then -1) or destruction (closed);
//  - nothing is ever buffered here, so HasBuffered() is always false and a kWouldBlock read or
//    write is exactly "wait for EPOLLIN / EPOLLOUT";
//  - a read that returned fewer bytes than asked drained the socket at that moment, so the next
//    Read says kWouldBlock without a syscall (once): bytes that arrive later raise a new
//    edge-triggered EPOLLIN, which is what the caller waits for after kWouldBlock. This saves the
//    read(2) that would only say EAGAIN, one per request on a keep-alive connection;
//  - EINTR is retried; EAGAIN is kWouldBlock; read() == 0 is the peer's FIN (kEof).
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "stream/client_stream.h"

namespace enclaver {

namespace {

class PlainClientStreamImpl final : public ClientStream {
 public:
  explicit PlainClientStreamImpl(int fd) : fd_(fd) {}
  ~PlainClientStreamImpl() override {
    if (fd_ >= 0) close(fd_);
  }

  int fd() const override { return fd_; }

  Result Read(char* buf, size_t len) override {
    if (std::exchange(drained_, false)) {
      wait_ = EPOLLIN;
      return Result{Io::kWouldBlock, 0, 0};
    }
    for (;;) {
      ssize_t n = read(fd_, buf, len);
      if (n > 0) {
        drained_ = static_cast<size_t>(n) < len;
        return Result{Io::kOk, static_cast<size_t>(n), 0};
      }
      if (n == 0) return Result{Io::kEof, 0, 0};
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        wait_ = EPOLLIN;
        return Result{Io::kWouldBlock, 0, 0};
      }
      return Result{Io::kError, 0, errno};
    }
  }

  Result Write(const char* buf, size_t len) override {
    for (;;) {
      // MSG_NOSIGNAL: a client gone mid-response is EPIPE here, never SIGPIPE for the process.
      ssize_t n = send(fd_, buf, len, MSG_NOSIGNAL);
      if (n >= 0) return Result{Io::kOk, static_cast<size_t>(n), 0};
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        wait_ = EPOLLOUT;
        return Result{Io::kWouldBlock, 0, 0};
      }
      return Result{Io::kError, 0, errno};
    }
  }

  Result ShutdownWrite() override {
    if (shutdown(fd_, SHUT_WR) < 0) return Result{Io::kError, 0, errno};
    return Result{Io::kOk, 0, 0};
  }

  uint32_t WaitEvents() const override { return wait_; }
  bool HasBuffered() const override { return false; }
  int Release() override { return std::exchange(fd_, -1); }

 private:
  int fd_;
  uint32_t wait_ = EPOLLIN;
  bool drained_ = false;
};

}  // namespace

std::unique_ptr<ClientStream> PlainClientStream(int fd) { return std::make_unique<PlainClientStreamImpl>(fd); }

}  // namespace enclaver
