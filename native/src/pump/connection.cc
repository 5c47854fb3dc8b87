#include "pump/connection.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace enclaver {

namespace {

// SPLICE_F_MOVE is a no-op since Linux 2.6.21 but harmless; SPLICE_F_NONBLOCK only makes the
// pipe side non-blocking, which is why both sockets are O_NONBLOCK as well.
constexpr unsigned kSpliceFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;

// Reads below this size count as "small" (request/response traffic). They are copied: a read and
// a write cost fewer calls than splicing in, splicing out and a third splice to learn the socket
// is empty, and a short read proves the socket drained. A read that fills this size starts a
// burst, which is spliced.
constexpr size_t kSmallChunk = 16 * 1024;

// What splice(2) answers for fds it cannot serve (no splice support in that file type, kTLS
// control records). Nothing was consumed, so copying from here on is safe.
bool IsSpliceRefusal(int err) {
  return err == EINVAL || err == ENOSYS || err == EOPNOTSUPP;
}

// Errors that mean "the peer reset": the other leg is reset too so its peer learns the same.
bool IsReset(int err) {
  return err == ECONNRESET || err == EPIPE;
}

CloseCause CauseOf(int end) {
  return end == kDownstreamEnd ? CloseCause::kDownstream : CloseCause::kUpstream;
}

}  // namespace

Connection::Connection(Options options) : id_(options.id), owner_(options.owner), idle_timeout_ms_(options.idle_timeout_ms) {
  ends_[kDownstreamEnd].fd = options.downstream_fd;
  ends_[kUpstreamEnd].fd = options.upstream_fd;
  auto init = [&options](Direction& d, int src, std::string head, uint64_t* bytes) {
    d.src = src;
    d.dst = src == kDownstreamEnd ? kUpstreamEnd : kDownstreamEnd;
    d.pending = std::move(head);
    d.splice = options.splice;
    d.bytes = bytes;
  };
  init(dirs_[0], kDownstreamEnd, std::move(options.head_up), &outcome_.bytes_up);
  init(dirs_[1], kUpstreamEnd, std::move(options.head_down), &outcome_.bytes_down);
  tags_[kDownstreamEnd] = Tag{this, kDownstreamEnd, nullptr};
  tags_[kUpstreamEnd] = Tag{this, kUpstreamEnd, nullptr};
}

Connection::~Connection() {
  // Normally Close() has run; this only guards against leaking fds if it has not.
  for (Endpoint& e : ends_) {
    if (e.fd >= 0) close(e.fd);
  }
}

void Connection::OnEvents(int end, uint32_t events) {
  // Errors and hang-ups mark both flags: the next read or write reports what happened.
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) ends_[end].readable = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) ends_[end].hup = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) ends_[end].writable = true;
}

static_assert(Connection::kBaseInterest == (EPOLLIN | EPOLLRDHUP | EPOLLET), "epoll flag values");

void Connection::UpdateInterest(PumpContext& ctx) {
  for (Endpoint& e : ends_) {
    uint32_t wanted = kBaseInterest | (e.writable ? 0u : static_cast<uint32_t>(EPOLLOUT));
    if (wanted == e.interest) continue;
    epoll_event ev{};
    ev.events = wanted;
    ev.data.ptr = &tags_[&e - ends_];
    // EPOLL_CTL_MOD re-checks readiness: a socket that drained meanwhile still reports EPOLLOUT.
    if (epoll_ctl(ctx.epoll_fd, EPOLL_CTL_MOD, e.fd, &ev) == 0) e.interest = wanted;
  }
}

bool Connection::Advance(PumpContext& ctx) {
  if (ended_) return true;
  Step up = Move(dirs_[0], ctx);
  Step down = up == Step::kFailed ? Step::kFailed : Move(dirs_[1], ctx);
  if (up == Step::kFailed || down == Step::kFailed || (up == Step::kDone && down == Step::kDone)) {
    Close(ctx);
    return true;
  }
  UpdateInterest(ctx);
  return false;
}

Connection::Step Connection::Move(Direction& d, PumpContext& ctx) {
  Endpoint& src = ends_[d.src];
  Endpoint& dst = ends_[d.dst];
  for (;;) {
    // 1. Bytes already in user space (handshake leftovers, the tail of a copied chunk) go first.
    if (d.pending_offset < d.pending.size()) {
      if (!dst.writable) return Step::kBlocked;
      ssize_t n = write(dst.fd, d.pending.data() + d.pending_offset, d.pending.size() - d.pending_offset);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
          dst.writable = false;
          return Step::kBlocked;
        }
        return Failed(d.dst, errno);
      }
      d.pending_offset += static_cast<size_t>(n);
      *d.bytes += static_cast<uint64_t>(n);
      Touch(ctx);
      if (d.pending_offset == d.pending.size()) {
        std::string().swap(d.pending);  // give the memory back: idle connections stay small
        d.pending_offset = 0;
      }
      continue;
    }
    // 2. Bytes in the pipe. The pipe is non-empty, so EAGAIN can only mean the destination is full.
    if (d.in_pipe > 0) {
      if (!dst.writable) return Step::kBlocked;
      ssize_t n = splice(d.pipe.read_fd, nullptr, dst.fd, nullptr, d.in_pipe, kSpliceFlags);
      if (n < 0) {
        int err = errno;
        if (err == EINTR) continue;
        if (err == EAGAIN) {
          dst.writable = false;
          return Step::kBlocked;
        }
        if (IsSpliceRefusal(err)) {
          if (!PipeToPending(d)) return Failed(d.dst, err);
          d.splice = false;
          ctx.counters.splice_refused++;
          continue;
        }
        return Failed(d.dst, err);
      }
      d.in_pipe -= static_cast<size_t>(n);
      *d.bytes += static_cast<uint64_t>(n);
      Touch(ctx);
      continue;
    }
    // Nothing buffered: an idle direction holds no pipe.
    if (d.has_pipe) ReturnPipe(d, ctx);
    if (d.eof) {
      if (!d.shut) {
        // Half-close: FIN follows the last byte. If the peer is already gone (ENOTCONN), the
        // other direction's next read or write reports it.
        shutdown(dst.fd, SHUT_WR);
        d.shut = true;
      }
      return Step::kDone;
    }
    // 3. Read only when the destination may take it: backpressure without unbounded buffers.
    if (!src.readable || !dst.writable) return Step::kBlocked;
    Step stop;
    if (!Fill(d, ctx, &stop)) return stop;
  }
}

// Reads one chunk from the source into the pipe (splice) or through the scratch buffer (copy).
// Returns false with *stop set when the direction cannot go on.
bool Connection::Fill(Direction& d, PumpContext& ctx, Step* stop) {
  Endpoint& src = ends_[d.src];
  bool fallback = !d.splice;
  if (d.splice && !d.small) {
    if (d.has_pipe || AcquirePipe(d, ctx)) {
      ssize_t n = splice(src.fd, nullptr, d.pipe.write_fd, nullptr, d.pipe.capacity, kSpliceFlags);
      if (n > 0) {
        d.in_pipe = static_cast<size_t>(n);
        d.small = static_cast<size_t>(n) < kSmallChunk;
        Touch(ctx);
        return true;
      }
      if (n == 0) {
        SourceEnded(d);
        return true;
      }
      int err = errno;
      if (err == EINTR) return true;
      if (err == EAGAIN) {
        // The pipe is empty, so it is the source that has nothing. (A short splice proves
        // nothing: it may have run out of pipe slots, one per packet, before bytes.)
        src.readable = false;
        return true;
      }
      if (IsSpliceRefusal(err)) {
        d.splice = false;
        ctx.counters.splice_refused++;
        return true;
      }
      *stop = Failed(d.src, err);
      return false;
    }
    fallback = true;  // no pipe within the page budget
  }

  size_t want = fallback ? ctx.scratch_size : kSmallChunk;
  ssize_t n = read(src.fd, ctx.scratch, want);
  if (n == 0) {
    SourceEnded(d);
    return true;
  }
  if (n < 0) {
    int err = errno;
    if (err == EINTR) return true;
    if (err == EAGAIN) {
      src.readable = false;
      return true;
    }
    *stop = Failed(d.src, err);
    return false;
  }
  // A short read emptied the socket: the next byte brings a new edge (unless the peer is closing,
  // when the end of stream must still be read).
  if (static_cast<size_t>(n) < want && !src.hup) src.readable = false;
  if (!fallback && static_cast<size_t>(n) == want) d.small = false;
  if (fallback) outcome_.copied = true;
  Touch(ctx);
  Endpoint& dst = ends_[d.dst];
  ssize_t w;
  do {
    w = write(dst.fd, ctx.scratch, static_cast<size_t>(n));
  } while (w < 0 && errno == EINTR);
  if (w < 0) {
    if (errno != EAGAIN) {
      *stop = Failed(d.dst, errno);
      return false;
    }
    w = 0;
    dst.writable = false;
  }
  *d.bytes += static_cast<uint64_t>(w);
  // The scratch buffer is shared by every connection of this thread: keep the unwritten tail.
  if (w < n) d.pending.assign(ctx.scratch + w, static_cast<size_t>(n - w));
  return true;
}

bool Connection::AcquirePipe(Direction& d, PumpContext& ctx) {
  if (!ctx.pipes.Acquire(&d.pipe)) {
    ctx.counters.budget_copies++;
    return false;
  }
  d.has_pipe = true;
  ctx.counters.pipe_capacity.store(d.pipe.capacity, std::memory_order_relaxed);
  return true;
}

void Connection::ReturnPipe(Direction& d, PumpContext& ctx) {
  if (!d.has_pipe) return;
  if (d.in_pipe == 0) {
    ctx.pipes.Release(d.pipe);
  } else {
    ctx.pipes.Discard(d.pipe);  // never pool a pipe that still holds bytes
  }
  d.has_pipe = false;
  d.in_pipe = 0;
}

// The destination refused splice after bytes were already in the pipe: take them back out so
// the copy path can deliver them.
bool Connection::PipeToPending(Direction& d) {
  std::string bytes(d.in_pipe, '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = read(d.pipe.read_fd, &bytes[got], bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  d.pending = std::move(bytes);
  d.pending_offset = 0;
  d.in_pipe = 0;
  return true;
}

void Connection::SourceEnded(Direction& d) {
  d.eof = true;
  outcome_.NoteClose(CauseOf(d.src));
}

void Connection::End(CloseCause cause, PumpContext& ctx) {
  outcome_.NoteClose(cause);
  Close(ctx);
}

void Connection::Fail(int end, int err, PumpContext& ctx) {
  Failed(end, err);
  Close(ctx);
}

void Connection::Close(PumpContext& ctx) {
  if (ended_) return;
  ended_ = true;
  for (Direction& d : dirs_) ReturnPipe(d, ctx);
  bool reset = outcome_.error_end >= 0 && IsReset(outcome_.error_errno);
  for (int end = 0; end < 2; end++) {
    Endpoint& e = ends_[end];
    if (e.fd < 0) continue;
    epoll_ctl(ctx.epoll_fd, EPOLL_CTL_DEL, e.fd, nullptr);
    if (reset && end != outcome_.error_end) {
      // Linger 0: close() sends RST instead of FIN, so the reset crosses the pump.
      linger l{1, 0};
      setsockopt(e.fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
    close(e.fd);
    e.fd = -1;
  }
  outcome_.duration_ms = ctx.now_ms - started_ms_;
}

}  // namespace enclaver
