// The native HTTP/1.1 engine of an `http` listener: one HttpSession per client connection, on
// the pump thread that accepted it. It reads and parses request heads (http_parse.h), routes
// them (glob.h), rewrites the head as proxy-inner/http-ingress/headers.ts does, forwards it and
// the body (Content-Length, or chunked: validated and re-framed) over a kept-alive upstream connection, and writes the app's response back with the
// framing Node's ServerResponse would choose. JS hears one record per request, in batches.
//
// Whatever it does not do itself goes to JS at a request boundary, with the fd and every byte
// of that request and after it: a head the strict parser does not accept (JS answers 400/431 or
// serves it), Upgrade, Expect, HTTP/1.0, no route (JS answers 404), the listener's own paths, a
// chunked body whose framing is already wrong in the bytes read with its head (JS answers 400
// and the app sees nothing), an app that cannot be dialled (JS tries every endpoint, answers 502).
// Chunked framing that goes wrong later is a 400 (or a close, once the response has begun) and
// the app's connection is closed, so the app never sees a complete request.
//
// Invariants:
//  - the session owns the client stream and the upstream fd until it ends or hands back; both
//    are registered edge-triggered for reads and writes, and the *_ready flags remember an edge
//    until the matching call says kWouldBlock, so Drive() never waits on a consumed edge;
//  - bytes are only ever moved client → in_ → up_out_ → app and app → up_in_ → down_out_ →
//    client; reading stops when the next buffer holds kMaxBuffered (backpressure both ways);
//  - a hand-back happens only before any byte of the current request reached the app, or on a
//    dial failure (nothing sent), so JS sees the request exactly once;
//  - a response head written to the client is never followed by anything but its own body:
//    an app failing mid-body closes the client connection (a truncated body must not look whole);
//  - every request that got past parsing produces exactly one record (Finish), every session
//    ends exactly once (End or HandBack), after which it only waits to be freed.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fastpath/fast_listener.h"
#include "http/glob.h"
#include "http/http_parse.h"
#include "stream/client_stream.h"

namespace enclaver {

struct HttpConfig {
  NativeRouteTable routes;
  std::vector<FastEndpoint> endpoints;  // one per cluster: its first endpoint
  std::vector<std::string> local_paths;  // answered by JS (the attestation endpoint)
  size_t max_header_bytes = 16384;
  size_t max_headers = 100;
  int64_t head_timeout_ms = 15000;
  int64_t idle_timeout_ms = 0;
  int64_t keep_alive_timeout_ms = 5000;
  int64_t upstream_idle_ms = 4000;  // a pooled app connection unused this long is closed
  std::string timeout_answer;  // the bytes of the JS path's 408, written as they are
  std::string bad_request_answer;  // the JS path's 400, for chunked framing that fails mid-body
  std::vector<std::string> reasons;  // status → reason phrase (Node's http.STATUS_CODES)
  // false: nobody writes request lines (the access-log level is off), so requests are only
  // summed per route for the metrics, with these histogram bounds.
  bool request_records = true;
  std::vector<double> buckets_seconds;
  std::string proto = "http";
};

struct HttpClient {
  std::string label;  // "ip:port", empty when not IP
  std::string address;  // ip only; empty when not IP
  int port = 0;
};

class HttpSession : public ReactorTask {
 public:
  HttpSession(Acceptor& acceptor, const HttpConfig& config, int fd, HttpClient client, uint64_t id, int64_t now_ms);
  ~HttpSession() override;

  // `read`: client bytes the Dial read past the PROXY header.
  void Begin(PumpContext& ctx, std::string read);
  void OnEvents(int slot, uint32_t events, PumpContext& ctx) override;
  // Once a second and after events: head, keep-alive, connect and idle deadlines.
  void CheckDeadline(PumpContext& ctx);
  // Drain deadline passed: ends now (an exchange in flight is recorded as the client gone).
  void Abort(PumpContext& ctx);
  bool done() const { return phase_ == Phase::kDone; }
  uint64_t id() const { return id_; }

 private:
  enum class Phase { kHead, kConnecting, kExchange, kClosing, kDone };

  void Drive(PumpContext& ctx);
  bool FlushClient(PumpContext& ctx);
  bool FlushUpstream(PumpContext& ctx);
  bool ReadClient(PumpContext& ctx);
  bool ReadUpstream(PumpContext& ctx);
  bool MoveBody(PumpContext& ctx);
  bool RequestBodyPending() const { return body_chunked_ || body_left_ > 0; }
  void BadRequestBody(PumpContext& ctx);
  bool Advance(PumpContext& ctx);
  void Dispatch(const RequestHead& head, const RouteHit& hit, PumpContext& ctx);
  bool Connect(int endpoint, PumpContext& ctx);
  // Adds `wanted` (EPOLLOUT, or what a TLS stream waits for) to the fd's edge-triggered mask.
  void WatchWrites(int slot, int fd, uint32_t wanted, PumpContext& ctx);
  bool AttachUpstream(int fd, PumpContext& ctx);
  void DetachUpstream(PumpContext& ctx, bool reusable);
  bool ProcessResponse(PumpContext& ctx);
  void WriteResponseHead(const ResponseHead& head);
  void UpstreamFailed(const char* code, PumpContext& ctx);
  void BadGateway(const char* code, const char* message, PumpContext& ctx);
  void FinishExchange(PumpContext& ctx);
  void Record(int status, const char* error);
  void HandBack(PumpContext& ctx);
  void End(PumpContext& ctx);
  size_t PendingIn() const { return in_.size() - in_off_; }

  Acceptor& acceptor_;
  const HttpConfig& config_;
  std::unique_ptr<ClientStream> client_;
  HttpClient facts_;
  uint64_t id_;
  TaskTag tags_[2];
  Phase phase_ = Phase::kHead;
  int64_t started_ms_;
  std::chrono::steady_clock::time_point started_;

  // Client side.
  std::string in_;
  size_t in_off_ = 0;
  std::string down_out_;
  size_t down_off_ = 0;
  bool client_ready_in_ = true, client_ready_out_ = true, client_eof_ = false;
  uint32_t client_watch_ = 0;  // the epoll mask registered for the client fd
  bool client_hup_ = false, up_hup_ = false;  // an edge said the peer ended: read until it shows
  uint64_t total_in_ = 0, total_out_ = 0, appended_out_ = 0;
  uint32_t served_ = 0;
  int64_t head_started_ms_;  // the current head's deadline counts from here
  int64_t idle_since_ms_;
  int64_t last_activity_ms_;

  // Upstream side.
  int up_fd_ = -1;
  int up_endpoint_ = -1;
  bool up_reused_ = false, up_retried_ = false;
  bool up_ready_in_ = false, up_ready_out_ = false, up_eof_ = false;
  std::string up_out_;
  size_t up_off_ = 0;
  std::string up_in_;
  size_t up_in_off_ = 0;
  int64_t connect_deadline_ms_ = 0;
  uint32_t up_watch_ = 0;

  // The exchange in flight.
  std::string method_, host_, path_;
  const std::string* route_ = nullptr;
  std::chrono::steady_clock::time_point request_started_;
  uint64_t request_in_start_ = 0, request_out_start_ = 0;
  int64_t body_left_ = 0;
  bool body_chunked_ = false;  // a chunked request body not yet at its last chunk
  ChunkedDecoder request_chunks_;
  bool head_method_ = false, close_after_ = false, replayable_ = true;
  std::string replay_;  // the request's bytes sent so far (rewritten head and body), for a retry
  size_t rewritten_length_ = 0;  // of replay_, the rewritten head
  std::string request_head_;  // the head as the client sent it, for a hand-back after a failed dial
  bool response_head_done_ = false;
  int status_ = 0;
  BodyFraming framing_ = BodyFraming::kNone;
  int64_t response_left_ = 0;
  bool response_close_ = false;
  ChunkedDecoder chunked_;
};

}  // namespace enclaver
