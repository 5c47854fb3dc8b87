#include "fastpath/tls_tunnel.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace enclaver {

namespace {

// One TLS record's plaintext at most: SSL_read returns a record at a time, and SSL_write makes one
// full record of it. Two per connection.
constexpr size_t kBufferBytes = 16 * 1024;

constexpr uint32_t kInterest = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

bool IsReset(int err) {
  return err == ECONNRESET || err == EPIPE;
}

}  // namespace

TlsTunnel::TlsTunnel(Options options)
    : id_(options.id),
      client_(std::move(options.client)),
      upstream_(options.upstream_fd),
      idle_timeout_ms_(options.idle_timeout_ms),
      on_end_(std::move(options.on_end)) {
  tags_[kDownstreamEnd] = Connection::Tag{nullptr, kDownstreamEnd, this};
  tags_[kUpstreamEnd] = Connection::Tag{nullptr, kUpstreamEnd, this};
  up_.bytes.assign(options.head_up.begin(), options.head_up.end());
  up_.end = up_.bytes.size();
  up_.bytes.resize(std::max(kBufferBytes, up_.bytes.size()));
  down_.bytes.resize(kBufferBytes);
  outcome_.copied = true;  // through user-space buffers, never spliced
}

TlsTunnel::~TlsTunnel() {
  if (upstream_ >= 0) close(upstream_);  // only if Close() has not run
}

void TlsTunnel::Start(PumpContext& ctx) {
  started_ms_ = last_activity_ms_ = ctx.now_ms;
  const int fds[2] = {client_->fd(), upstream_};
  for (int end = 0; end < 2; end++) {
    epoll_event ev{};
    ev.events = kInterest;
    ev.data.ptr = &tags_[end];
    if (epoll_ctl(ctx.epoll_fd, EPOLL_CTL_ADD, fds[end], &ev) < 0) {
      Failed(end, errno);
      return Close(ctx);
    }
  }
  Advance(ctx);
}

void TlsTunnel::OnEvents(int slot, uint32_t events, PumpContext& ctx) {
  if (!ended_) Advance(ctx);
}

void TlsTunnel::Advance(PumpContext& ctx) {
  Step up = MoveUp(ctx);
  Step down = up == Step::kFailed ? Step::kFailed : MoveDown(ctx);
  if (up == Step::kFailed || down == Step::kFailed || (up == Step::kDone && down == Step::kDone)) Close(ctx);
}

TlsTunnel::Step TlsTunnel::MoveUp(PumpContext& ctx) {
  Buffer& b = up_;
  for (;;) {
    if (!b.empty()) {
      ssize_t n = write(upstream_, b.bytes.data() + b.begin, b.end - b.begin);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return Step::kBlocked;
        return Failed(kUpstreamEnd, errno);
      }
      b.begin += static_cast<size_t>(n);
      outcome_.bytes_up += static_cast<uint64_t>(n);
      last_activity_ms_ = ctx.now_ms;
      if (b.empty()) b.begin = b.end = 0;
      continue;
    }
    if (b.eof) {
      if (!b.shut) {
        shutdown(upstream_, SHUT_WR);  // a failure shows on the upstream's next read
        b.shut = true;
      }
      return Step::kDone;
    }
    ClientStream::Result r = client_->Read(b.bytes.data(), b.bytes.size());
    switch (r.io) {
      case ClientStream::Io::kOk:
        b.end = r.bytes;
        last_activity_ms_ = ctx.now_ms;
        continue;
      case ClientStream::Io::kWouldBlock: return Step::kBlocked;
      case ClientStream::Io::kEof:
        b.eof = true;
        outcome_.NoteClose(CloseCause::kDownstream);
        continue;
      case ClientStream::Io::kError: return Failed(kDownstreamEnd, r.error);
    }
  }
}

TlsTunnel::Step TlsTunnel::MoveDown(PumpContext& ctx) {
  Buffer& b = down_;
  for (;;) {
    if (!b.empty()) {
      // After kWouldBlock the same bytes are offered again, as OpenSSL requires.
      ClientStream::Result r = client_->Write(b.bytes.data() + b.begin, b.end - b.begin);
      if (r.io == ClientStream::Io::kWouldBlock) return Step::kBlocked;
      if (r.io != ClientStream::Io::kOk) return Failed(kDownstreamEnd, r.io == ClientStream::Io::kError ? r.error : EPIPE);
      b.begin += r.bytes;
      outcome_.bytes_down += r.bytes;
      last_activity_ms_ = ctx.now_ms;
      if (b.empty()) b.begin = b.end = 0;
      continue;
    }
    if (b.eof) {
      if (!b.shut) {
        ClientStream::Result r = client_->ShutdownWrite();
        if (r.io == ClientStream::Io::kWouldBlock) return Step::kBlocked;
        if (r.io == ClientStream::Io::kError) return Failed(kDownstreamEnd, r.error);
        b.shut = true;
      }
      return Step::kDone;
    }
    ssize_t n = read(upstream_, b.bytes.data(), b.bytes.size());
    if (n > 0) {
      b.end = static_cast<size_t>(n);
      last_activity_ms_ = ctx.now_ms;
      continue;
    }
    if (n == 0) {
      b.eof = true;
      outcome_.NoteClose(CloseCause::kUpstream);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return Step::kBlocked;
    return Failed(kUpstreamEnd, errno);
  }
}

void TlsTunnel::End(CloseCause cause, PumpContext& ctx) {
  if (ended_) return;
  outcome_.NoteClose(cause);
  Close(ctx);
}

void TlsTunnel::Close(PumpContext& ctx) {
  if (ended_) return;
  ended_ = true;
  bool reset = outcome_.error_end >= 0 && IsReset(outcome_.error_errno);
  const int fds[2] = {client_->fd(), upstream_};
  for (int end = 0; end < 2; end++) {
    epoll_ctl(ctx.epoll_fd, EPOLL_CTL_DEL, fds[end], nullptr);
    if (reset && end != outcome_.error_end) {
      linger l{1, 0};  // close() sends RST: the reset crosses the tunnel
      setsockopt(fds[end], SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
  }
  client_.reset();  // closes the client's fd (without close_notify: the end was not clean)
  close(std::exchange(upstream_, -1));
  outcome_.duration_ms = ctx.now_ms - started_ms_;
  on_end_(*this, ctx);
}

}  // namespace enclaver
