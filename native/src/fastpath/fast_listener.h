// The native fast path of a pass-through listener: the pump threads accept, dial the cluster's
// first endpoint (non-blocking), write or read the PROXY v2 header and start pumping, with no
// JavaScript per connection. JavaScript hears about connections in batches (one call per batch
// of events on a pump thread): how many started, each one that ended (bytes, duration, how it
// ended) and the connections handed back to it.
//
// A listener with `tls` terminates TLS here too (stream/tls_stream.h): accept → [PROXY header] →
// TLS handshake → dial → tunnel (fastpath/tls_tunnel.h). Such a connection is the pump thread's
// for good once its handshake starts ("committed"): TLS state cannot move to JS, so a failed
// handshake, a refused or slow dial after it, are reported as "not proxied" records, never
// handed back. Before that (no identity loaded yet, a PROXY header it does not accept) it goes
// to JS as any other listener's connection does.
//
// An `http` listener (FastListenerConfig::http set) runs the native HTTP/1.1 engine instead of
// dialling and pumping: after the PROXY header each connection becomes an HttpSession
// (http/http_session.h) on this thread, which reports one record per request and hands
// connections back at a request boundary (FallbackRecord::resumed).
//
// Handing back ("fallback") is how every unusual case keeps its JavaScript behaviour: a refused
// or timed-out dial, a PROXY header the parser does not accept in full, a slow header. The
// accepted fd and every byte read from it go to JS, which runs the ordinary handler on them
// (it retries the cluster's endpoints, holds, logs, refuses, exactly as without the fast path).
//
// Invariants:
//  - an fd belongs to exactly one of: a Dial (until it becomes a Connection or an HttpSession,
//    or is handed back), a Connection (owned by the reactor), an HttpSession, a FallbackRecord (until JS adopts it, or the batch is
//    dropped, which closes it);
//  - a committed dial is counted in `accepted` when its handshake starts, and reported exactly
//    once afterwards: as a ClosedRecord (its tunnel ended, or aborted) or a NotProxiedRecord;
//  - FastListener::active_ counts every connection from accept until JS releases it (fallbacks)
//    or its Connection or HttpSession ends; max_connections is checked against it before anything else happens;
//  - all Acceptor and Dial state is touched only on its reactor thread; the listener's shared
//    state is atomics, and the delivery function, which a mutex guards against its closing.
#pragma once

#include <napi.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "fastpath/proxy_v2.h"
#include "fastpath/tls_tunnel.h"
#include "pump/reactor.h"
#include "stream/tls_stream.h"

namespace enclaver {

struct HttpConfig;
class HttpSession;

struct FastEndpoint {
  sockaddr_storage address{};
  socklen_t length = 0;
  bool tcp = false;  // TCP_NODELAY on the dialled socket, as the JS path sets noDelay
};

struct FastListenerConfig {
  int listen_fd = -1;  // owned; closed when the last pump thread stops accepting
  FastEndpoint endpoint;  // the cluster's first endpoint; the JS path tries all of them
  bool expect_proxy = false;
  bool send_proxy = false;
  int64_t max_connections = 0;  // 0: no limit
  int64_t idle_timeout_ms = 0;
  int64_t connect_timeout_ms = 5000;
  int64_t header_timeout_ms = 5000;  // then the connection goes to JS, which keeps waiting
  // false: connections that ended without an error are only summed (nobody logs them one by
  // one: no access log, log level above debug); records are kept for errors.
  bool records = true;
  // Terminate TLS with the identity set by SetTlsContext (until then, connections go to JS).
  bool tls = false;
  int64_t handshake_timeout_ms = 15000;  // then the connection fails (terminateTls's timeout)
  // Set: the listener speaks HTTP/1.1 natively (http/http_session.h); `endpoint` is unused.
  std::shared_ptr<const HttpConfig> http;
};

struct ClosedRecord {
  std::string client;  // empty when the client has no IP address (a Unix peer, a LOCAL header)
  uint64_t bytes_in = 0;  // client bytes (the PROXY header we sent is not counted)
  uint64_t bytes_out = 0;
  int64_t duration_ms = 0;
  CloseCause closed_by = CloseCause::kAborted;
  int error_end = -1;
  int error_errno = 0;
  bool copied = false;  // some bytes went through the copy path instead of splice
};

// A committed connection that never reached its upstream (the JS path's "connection not proxied").
struct NotProxiedRecord {
  enum class Stage { kTls, kCluster };
  std::string client;
  Stage stage = Stage::kTls;
  std::string code;  // kTls: tls_handshake_failed / tls_handshake_timeout; kCluster: empty, see errno
  int error_errno = 0;
  std::string message;
  int64_t duration_ms = 0;
};

struct FallbackRecord {
  int fd = -1;
  std::string head;  // bytes already read from the client, in order
  // An HttpSession's hand-back, at a request boundary: the PROXY header (if any) was consumed and
  // these are the client facts it gave; `served` requests were answered natively before.
  bool resumed = false;
  uint64_t conn = 0;
  std::string client_address;
  int client_port = 0;
  uint32_t served = 0;
};

// One request served by an HttpSession: what the JS path's access line and route metrics need.
struct HttpRequestRecord {
  uint64_t conn = 0;
  std::string method, host, path, route;
  int status = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
  double duration_ms = 0;
  std::string client;  // "ip:port", empty when not IP
  std::string error;  // empty: none
};

// Requests of one route summed, for listeners whose request lines nobody writes (the access-log
// level is off): what the route metrics need, without one JS object per request.
struct RouteAggregate {
  std::string route;
  uint32_t by_class[10] = {};  // by status class (hundreds digit)
  std::vector<uint32_t> per_bucket;  // not cumulative; the last slot is above the largest bound
  double sum_seconds = 0;
  uint32_t count = 0;
};

// Connections that ended cleanly, summed (FastListenerConfig::records false).
struct ClosedSummary {
  uint32_t count = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  int64_t duration_ms = 0;
  uint32_t copied = 0;  // of `count`, connections some of whose bytes were copied, not spliced
};

struct FastBatch {
  uint32_t accepted = 0;  // connections that started pumping
  uint32_t rejected = 0;  // refused at max_connections
  ClosedSummary summed;
  // This pump thread stopped accepting; everything it accepted before is in this batch or an
  // earlier one. Once every thread has said so, the listening socket is closed.
  bool stopped = false;
  std::vector<ClosedRecord> closed;
  std::vector<FallbackRecord> fallbacks;
  std::vector<NotProxiedRecord> not_proxied;
  std::vector<HttpRequestRecord> requests;
  std::vector<RouteAggregate> routes;
  size_t size() const { return accepted + summed.count + closed.size() + not_proxied.size() + requests.size() + routes.size(); }
  bool empty() const {
    return accepted == 0 && rejected == 0 && summed.count == 0 && !stopped && closed.empty() && fallbacks.empty() && not_proxied.empty() &&
           requests.empty() && routes.empty();
  }
  ~FastBatch();  // closes fallback fds nobody took
};

class FastListener {
 public:
  // Posts a batch to JS; false when nobody listens any more (the caller keeps the batch).
  using Deliver = std::function<bool(std::unique_ptr<FastBatch>&)>;

  FastListener(FastListenerConfig config, size_t threads, Deliver deliver);
  ~FastListener();
  FastListener(const FastListener&) = delete;
  FastListener& operator=(const FastListener&) = delete;

  const FastListenerConfig& config() const { return config_; }
  // Counts a new connection; false when max_connections are open.
  bool TryAcquire();
  void Release() { active_.fetch_sub(1, std::memory_order_relaxed); }
  // A pump thread stopped accepting; the last one closes the listening fd.
  void ThreadStopped();
  bool Post(std::unique_ptr<FastBatch>& batch) { return deliver_(batch); }
  // Any thread: the identity for handshakes that start from now on (null: none yet).
  void SetTlsContext(std::shared_ptr<TlsContext> context);
  std::shared_ptr<TlsContext> tls_context();

 private:
  FastListenerConfig config_;
  std::mutex tls_mutex_;
  std::shared_ptr<TlsContext> tls_context_;  // guarded by tls_mutex_
  std::atomic<int64_t> active_{0};
  std::atomic<size_t> threads_accepting_;
  Deliver deliver_;
};

class Dial;

// One per listener per pump thread: accepts (EPOLLEXCLUSIVE shares the listening socket between
// threads), owns the dials of its thread, and batches what JS must hear.
class Acceptor : public ReactorTask {
 public:
  Acceptor(std::shared_ptr<FastListener> listener, Reactor& reactor);
  ~Acceptor() override;

  void Start(PumpContext& ctx);
  // Stops accepting and hands the connections still being set up to JS.
  void StopAccepting(PumpContext& ctx);
  // Ends every connection of this thread now: dials are closed, pumped connections aborted.
  void AbortAll(PumpContext& ctx);
  void Remove(PumpContext& ctx);

  void OnEvents(int slot, uint32_t events, PumpContext& ctx) override;
  void OnConnectionEnd(const Connection& connection, PumpContext& ctx) override;
  bool AfterEvents(PumpContext& ctx) override;

  // From a Dial (same thread): its connection is set up, or must go to JS, or (committed) failed.
  void Pump(Dial& dial, PumpContext& ctx);
  void HandBack(Dial& dial, PumpContext& ctx);
  void Commit() { batch_->accepted++; }
  void NotProxied(Dial& dial, NotProxiedRecord record, PumpContext& ctx);
  std::shared_ptr<TlsContext> tls_context() { return listener_->tls_context(); }
  // From a Dial of an http listener: the connection becomes an HttpSession.
  void Serve(Dial& dial, PumpContext& ctx);
  const FastListenerConfig& config() const { return listener_->config(); }

  // From an HttpSession (same thread).
  void RecordRequest(HttpRequestRecord record);
  // A request only the route metrics hear about (HttpConfig::request_records false).
  void CountRequest(const std::string& route, int status, double duration_ms);
  void SessionHandedBack(HttpSession& session, FallbackRecord record, uint64_t bytes_in, uint64_t bytes_out, PumpContext& ctx);
  void SessionEnded(HttpSession& session, uint64_t bytes_in, uint64_t bytes_out, int64_t duration_ms);
  // This thread's idle app connections, per endpoint: an fd still idle, or -1.
  int TakeUpstream(int endpoint, int64_t now_ms);
  void GiveUpstream(int endpoint, int fd, int64_t now_ms);

 private:
  struct Session {
    std::string client;
    size_t header_bytes;  // the PROXY header we wrote, not counted as client bytes
  };

  void AcceptSome(PumpContext& ctx);
  void Watch(bool on);
  void Retire(Dial& dial);
  void Report(uint64_t id, const PumpOutcome& outcome);
  void TunnelEnded(TlsTunnel& tunnel);
  void ExpireIdleTunnels(PumpContext& ctx);
  void RetireSession(HttpSession& session);
  void PruneUpstreams(int64_t now_ms);
  void Flush();

  std::shared_ptr<FastListener> listener_;
  Reactor& reactor_;
  Connection::Tag tag_;
  bool watching_ = false;
  bool accepting_ = false;
  int64_t paused_until_ms_ = 0;  // accept failed for want of fds or memory: retry after this
  std::unordered_map<Dial*, std::unique_ptr<Dial>> dials_;
  std::unordered_map<HttpSession*, std::unique_ptr<HttpSession>> http_sessions_;
  std::vector<std::unique_ptr<ReactorTask>> retired_;  // freed after the current batch of events
  std::unordered_map<uint64_t, std::unique_ptr<TlsTunnel>> tunnels_;
  std::vector<std::unique_ptr<TlsTunnel>> retired_tunnels_;  // as retired_
  int64_t next_idle_check_ms_ = 0;
  struct IdleUpstream {
    int fd;
    int64_t since_ms;
  };
  std::vector<std::vector<IdleUpstream>> idle_upstreams_;  // per endpoint, most recent last
  int64_t sessions_checked_ms_ = 0;
  int64_t upstreams_pruned_ms_ = 0;
  std::unordered_map<uint64_t, Session> sessions_;
  std::unique_ptr<FastBatch> batch_;
  int64_t batch_started_ms_ = -1;  // when the batch got its first record
};

}  // namespace enclaver
