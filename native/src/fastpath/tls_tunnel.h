// One TLS-terminated fast-path connection after its handshake: plaintext moves between the
// client's stream (TLS, decrypted on this pump thread) and the plain upstream socket, copied
// through one buffer per direction. splice(2) cannot carry it: the bytes change on the way.
//
// Invariants:
//  - a direction reads from its source only when its buffer is empty, so a full destination
//    stops the reading (backpressure) and at most one buffer per direction is held;
//  - both fds are registered edge-triggered for reading and writing for the tunnel's whole life,
//    and every event runs both directions until each is blocked on a call that said "would
//    block" (EAGAIN, or OpenSSL's WANT_READ/WANT_WRITE, which come from the same EAGAIN): no edge
//    is lost, including a TLS read that needs the socket writable;
//  - half-close crosses: the client's close_notify or FIN shuts the upstream's write side; the
//    upstream's FIN sends close_notify and then FIN to the client; the tunnel ends when both
//    directions have ended, or on the first error;
//  - a reset (ECONNRESET/EPIPE) on one side closes the other with linger 0 (RST), as the pump does;
//  - after End() the tunnel ignores events (it is freed after the current batch by its owner).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pump/connection.h"
#include "pump/reactor.h"
#include "stream/client_stream.h"

namespace enclaver {

class TlsTunnel : public ReactorTask {
 public:
  using EndFn = std::function<void(TlsTunnel&, PumpContext&)>;

  struct Options {
    uint64_t id = 0;
    std::unique_ptr<ClientStream> client;
    int upstream_fd = -1;  // owned from construction on
    std::string head_up;   // sent upstream first (the PROXY header we send)
    int64_t idle_timeout_ms = 0;
    EndFn on_end;  // called once, when the tunnel has ended and both fds are closed
  };

  explicit TlsTunnel(Options options);
  ~TlsTunnel() override;
  TlsTunnel(const TlsTunnel&) = delete;
  TlsTunnel& operator=(const TlsTunnel&) = delete;

  uint64_t id() const { return id_; }
  const PumpOutcome& outcome() const { return outcome_; }
  bool ended() const { return ended_; }
  bool IdleExpired(int64_t now_ms) const { return idle_timeout_ms_ > 0 && now_ms - last_activity_ms_ >= idle_timeout_ms_; }

  // Registers both fds and moves what is already there.
  void Start(PumpContext& ctx);
  // Ends it now for a reason outside the sockets (abort, idle timeout).
  void End(CloseCause cause, PumpContext& ctx);
  void OnEvents(int slot, uint32_t events, PumpContext& ctx) override;

 private:
  enum class Step { kBlocked, kDone, kFailed };

  struct Buffer {
    std::vector<char> bytes;
    size_t begin = 0;  // bytes[begin, end) are still to be written
    size_t end = 0;
    bool eof = false;   // the source has ended
    bool shut = false;  // the destination's write side is shut
    bool empty() const { return begin == end; }
  };

  void Advance(PumpContext& ctx);
  Step MoveUp(PumpContext& ctx);    // client → upstream
  Step MoveDown(PumpContext& ctx);  // upstream → client
  Step Failed(int end, int err) {
    outcome_.NoteError(end, err);
    return Step::kFailed;
  }
  void Close(PumpContext& ctx);

  uint64_t id_;
  std::unique_ptr<ClientStream> client_;
  int upstream_;
  Connection::Tag tags_[2];
  Buffer up_;
  Buffer down_;
  int64_t idle_timeout_ms_;
  int64_t started_ms_ = 0;
  int64_t last_activity_ms_ = 0;
  bool ended_ = false;
  PumpOutcome outcome_;
  EndFn on_end_;
};

}  // namespace enclaver
