// One pumped connection: two sockets, two directions, moved by splice(2) through pooled pipes
// (or by read/write where the kernel refuses splice), driven by edge-triggered readiness.
//
// Invariants that make the EAGAIN of splice unambiguous (see envoy-perf research §3):
//  - a direction reads only when nothing of it is buffered (pipe empty, no pending bytes) and
//    its destination is not known to be full, so EAGAIN on a read means "source empty" and
//    EAGAIN on a write means "destination full";
//  - buffered bytes per direction are bounded by one pipe (or one copy chunk): backpressure.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "pump/pipe_pool.h"

namespace enclaver {

class ReactorTask;

constexpr int kDownstreamEnd = 0;
constexpr int kUpstreamEnd = 1;

enum class CloseCause : int { kDownstream = 0, kUpstream = 1, kAborted = 2, kIdleTimeout = 3 };

struct PumpOutcome {
  uint64_t bytes_up = 0;    // downstream → upstream, bytes the upstream socket accepted
  uint64_t bytes_down = 0;  // upstream → downstream
  CloseCause closed_by = CloseCause::kAborted;
  int error_end = -1;  // kDownstreamEnd / kUpstreamEnd, or -1 for a clean end
  int error_errno = 0;
  bool copied = false;  // some bytes were copied because splice was refused or no pipe fit the budget
  int64_t duration_ms = 0;
  bool closed_by_known = false;  // closed_by holds the first close, later ones change nothing

  // What ended first names closed_by (the pump and the TLS tunnel record ends alike).
  void NoteClose(CloseCause cause) {
    if (closed_by_known) return;
    closed_by_known = true;
    closed_by = cause;
  }
  // A failed call on `end` (kDownstreamEnd/kUpstreamEnd): the first error is the one reported.
  void NoteError(int end, int err) {
    if (error_end < 0) {
      error_end = end;
      error_errno = err;
    }
    NoteClose(end == kDownstreamEnd ? CloseCause::kDownstream : CloseCause::kUpstream);
  }
};

// Counters shared by every pump thread, read by JS for `pumpStats()`.
struct PumpCounters {
  std::atomic<uint64_t> splice_refused{0};   // directions that fell back to copying (EINVAL/ENOSYS)
  std::atomic<uint64_t> budget_copies{0};    // chunks copied because no pipe fit the page budget
  std::atomic<uint64_t> pipe_capacity{0};    // capacity of the most recent pipe created
};

// What a connection needs from the thread that runs it.
struct PumpContext {
  PipePool& pipes;
  PumpCounters& counters;
  int epoll_fd;
  char* scratch;  // copy-path buffer, shared by the thread's connections (used only within one call)
  size_t scratch_size;
  int64_t now_ms;
};

class Connection {
 public:
  struct Options {
    uint64_t id = 0;
    int downstream_fd = -1;  // owned from construction on
    int upstream_fd = -1;
    std::string head_up;    // bytes JS already read from downstream, sent upstream first
    std::string head_down;  // bytes JS already read from upstream, sent downstream first
    int64_t idle_timeout_ms = 0;
    bool splice = true;  // false: copy path only (tests of the fallback, diagnostics)
    // Who hears of the end: null for connections JS started (reported through the completion
    // callback), the fast-path acceptor for connections it made (reported in its batches).
    ReactorTask* owner = nullptr;
  };

  // The tag epoll carries for each registered fd: a connection's end, or (connection null) one
  // fd of a reactor task (an acceptor's listening socket, a dial in progress).
  struct Tag {
    Connection* connection;
    int end;
    ReactorTask* task = nullptr;
  };

  explicit Connection(Options options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  uint64_t id() const { return id_; }
  ReactorTask* owner() const { return owner_; }
  int fd(int end) const { return ends_[end].fd; }
  Tag* tag(int end) { return &tags_[end]; }
  bool ended() const { return ended_; }
  bool has_idle_timeout() const { return idle_timeout_ms_ > 0; }
  bool IdleExpired(int64_t now_ms) const { return idle_timeout_ms_ > 0 && now_ms - last_activity_ms_ >= idle_timeout_ms_; }
  const PumpOutcome& outcome() const { return outcome_; }

  // Starts the clocks (duration, idle timeout) when the pump thread takes the connection.
  void Begin(int64_t now_ms) { started_ms_ = last_activity_ms_ = now_ms; }
  // The epoll interest an end starts with (see UpdateInterest).
  static constexpr uint32_t kBaseInterest = 0x001 /* EPOLLIN */ | 0x2000 /* EPOLLRDHUP */ | (1u << 31) /* EPOLLET */;
  // Records readiness reported by epoll for one end.
  void OnEvents(int end, uint32_t events);
  // Asks epoll for writability only on ends that are waiting for it. Writable interest left on
  // costs a wake-up each time the peer consumes data (Unix sockets signal every freed buffer).
  void UpdateInterest(PumpContext& ctx);
  // Moves bytes until both directions are blocked or the connection is over; true once over.
  bool Advance(PumpContext& ctx);
  // Ends the connection now for a reason outside the sockets (abort, idle timeout).
  void End(CloseCause cause, PumpContext& ctx);
  // Ends the connection because a call on `end` failed with `err` (e.g. epoll registration).
  void Fail(int end, int err, PumpContext& ctx);

 private:
  struct Endpoint {
    int fd = -1;
    bool readable = true;  // optimistic until a read says EAGAIN
    bool writable = true;  // until a write says EAGAIN
    bool hup = false;      // the peer closed or failed: read until a read says so, never trust a short one
    uint32_t interest = kBaseInterest;  // what epoll currently watches for
  };

  struct Direction {
    int src = kDownstreamEnd;
    int dst = kUpstreamEnd;
    Pipe pipe;
    bool has_pipe = false;
    size_t in_pipe = 0;
    std::string pending;  // head bytes, or the unwritten tail of a copied chunk
    size_t pending_offset = 0;
    bool eof = false;   // source reached end of stream
    bool shut = false;  // shutdown(dst, SHUT_WR) done
    bool splice = true;   // false: splice refused, copy for good
    bool small = true;    // recent reads were small: copy them (see Fill)
    uint64_t* bytes = nullptr;
  };

  enum class Step { kBlocked, kDone, kFailed };

  Step Move(Direction& d, PumpContext& ctx);
  bool Fill(Direction& d, PumpContext& ctx, Step* stop);
  bool AcquirePipe(Direction& d, PumpContext& ctx);
  void ReturnPipe(Direction& d, PumpContext& ctx);
  bool PipeToPending(Direction& d);
  void SourceEnded(Direction& d);
  void Touch(const PumpContext& ctx) { last_activity_ms_ = ctx.now_ms; }
  Step Failed(int end, int err) {
    outcome_.NoteError(end, err);
    return Step::kFailed;
  }
  void Close(PumpContext& ctx);

  uint64_t id_;
  ReactorTask* owner_;
  Endpoint ends_[2];
  Direction dirs_[2];  // [0] up: downstream → upstream, [1] down: upstream → downstream
  Tag tags_[2];
  int64_t idle_timeout_ms_;
  int64_t started_ms_ = 0;
  int64_t last_activity_ms_ = 0;
  bool ended_ = false;
  PumpOutcome outcome_;
};

}  // namespace enclaver
