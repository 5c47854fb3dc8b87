#include "fastpath/fast_listener.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <utility>

#include "http/http_session.h"

namespace enclaver {

namespace {

constexpr int kListenSlot = 0;
constexpr int kDownstreamSlot = 0;
constexpr int kUpstreamSlot = 1;
// Accepts per wake-up: the thread has pumping to do too, and the socket stays readable.
constexpr int kAcceptBurst = 64;
// After EMFILE/ENFILE/ENOBUFS/ENOMEM the queue stays full; a level-triggered socket would spin.
constexpr int64_t kAcceptPauseMs = 100;
// Fast-path connection ids live above every id JS hands out, in the same per-thread map.
constexpr uint64_t kFastIdBase = uint64_t{1} << 52;
std::atomic<uint64_t> next_fast_id{kFastIdBase};
// Reports are collected this long before they go to JS: each delivery wakes Node's main thread,
// and one wake-up per connection cost more than the rest of the connection (measured: see
// docs/decisions.md). Connections handed back and the stop are delivered at once.
constexpr int64_t kBatchWindowMs = 20;
constexpr size_t kBatchMaxRecords = 1024;
// How often tunnels are checked for their idle timeout (pumped connections: the reactor's own check).
constexpr int64_t kIdleCheckMs = 1000;

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace

// A connection between accept and pump: reading the PROXY header (when expected), the TLS
// handshake (TLS listeners), then dialling.
class Dial : public ReactorTask {
 public:
  enum class State { kReadingHeader, kHandshaking, kConnecting, kDone };

  Dial(Acceptor& acceptor, int downstream, const sockaddr_storage& peer, int64_t now_ms)
      : acceptor_(acceptor), downstream_(downstream), peer_(peer), started_ms_(now_ms) {
    tags_[kDownstreamSlot] = Connection::Tag{nullptr, kDownstreamSlot, this};
    tags_[kUpstreamSlot] = Connection::Tag{nullptr, kUpstreamSlot, this};
    const FastListenerConfig& config = acceptor.config();
    state_ = config.expect_proxy ? State::kReadingHeader : State::kConnecting;
    deadline_ms_ = now_ms + (config.expect_proxy ? config.header_timeout_ms : config.connect_timeout_ms);
  }

  ~Dial() override {
    if (downstream_ >= 0) close(downstream_);
    if (upstream_ >= 0) close(upstream_);
  }  // stream_ closes the client's fd once the handshake has started

  void Begin(PumpContext& ctx) {
    if (state_ == State::kReadingHeader) ReadHeader(ctx);
    else HeaderDone(ctx);
  }

  void OnEvents(int slot, uint32_t events, PumpContext& ctx) override {
    if (state_ == State::kDone) return;  // an event from the batch that finished it
    if (slot == kDownstreamSlot && state_ == State::kReadingHeader) ReadHeader(ctx);
    else if (slot == kDownstreamSlot && state_ == State::kHandshaking) Handshake(ctx);
    else if (slot == kUpstreamSlot && state_ == State::kConnecting) ConnectDone(ctx);
  }

  // Called once a second: a dial past its deadline goes to JS, which has its own timeouts; a
  // committed one (TLS begun) fails here as the JS path's timeouts would fail it.
  void CheckDeadline(PumpContext& ctx) {
    if (state_ == State::kDone || ctx.now_ms < deadline_ms_) return;
    if (state_ == State::kHandshaking) {
      const int64_t ms = acceptor_.config().handshake_timeout_ms;
      return Fail(NotProxiedRecord::Stage::kTls, "tls_handshake_timeout", 0, "no TLS handshake within " + std::to_string(ms) + " ms", ctx);
    }
    DialFailed(ETIMEDOUT, ctx);
  }

  bool done() const { return state_ == State::kDone; }
  // The TLS handshake has started: the connection cannot go to JS any more.
  bool committed() const { return stream_ != nullptr; }

  // Leaves the reactor's epoll set; after this the fds may be re-registered by a Connection.
  void Unwatch(PumpContext& ctx) {
    if (down_watched_) epoll_ctl(ctx.epoll_fd, EPOLL_CTL_DEL, client_fd(), nullptr);
    if (up_watched_) epoll_ctl(ctx.epoll_fd, EPOLL_CTL_DEL, upstream_, nullptr);
    down_watched_ = up_watched_ = false;
    state_ = State::kDone;
  }

  int client_fd() const { return stream_ ? stream_->fd() : downstream_; }
  int64_t started_ms() const { return started_ms_; }
  int TakeDownstream() { return std::exchange(downstream_, -1); }
  std::unique_ptr<TlsClientStream> TakeStream() { return std::move(stream_); }
  int TakeUpstream() { return std::exchange(upstream_, -1); }
  std::string TakeRead() { return std::move(read_); }
  const sockaddr_storage& peer() const { return peer_; }
  const ProxyV2Header& header() const { return header_; }
  bool header_read() const { return header_done_; }
  size_t header_length() const { return header_done_ ? header_.consumed : 0; }

 private:
  bool WatchFd(int fd, int slot, uint32_t events, PumpContext& ctx, int op = EPOLL_CTL_ADD) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = &tags_[slot];
    return epoll_ctl(ctx.epoll_fd, op, fd, &ev) == 0;
  }

  void Fail(NotProxiedRecord::Stage stage, std::string code, int err, std::string message, PumpContext& ctx) {
    NotProxiedRecord r;
    r.stage = stage;
    r.code = std::move(code);
    r.error_errno = err;
    r.message = std::move(message);
    acceptor_.NotProxied(*this, std::move(r), ctx);
  }

  // The dial did not connect: JS retries, holds or refuses, unless TLS has begun.
  void DialFailed(int err, PumpContext& ctx) {
    if (upstream_ >= 0) {
      if (up_watched_) epoll_ctl(ctx.epoll_fd, EPOLL_CTL_DEL, upstream_, nullptr);
      up_watched_ = false;
      close(std::exchange(upstream_, -1));
    }
    if (!committed()) return acceptor_.HandBack(*this, ctx);
    Fail(NotProxiedRecord::Stage::kCluster, "", err, "", ctx);
  }

  // After the PROXY header (or at once): TLS listeners start the handshake, others dial.
  void HeaderDone(PumpContext& ctx) {
    if (!acceptor_.config().tls) return Proceed(ctx);
    std::shared_ptr<TlsContext> context = acceptor_.tls_context();
    if (!context) return acceptor_.HandBack(*this, ctx);  // no identity yet: JS waits for it
    stream_ = std::make_unique<TlsClientStream>(std::exchange(downstream_, -1), std::move(context), read_.substr(header_length()));
    read_.clear();
    acceptor_.Commit();
    state_ = State::kHandshaking;
    deadline_ms_ = ctx.now_ms + acceptor_.config().handshake_timeout_ms;
    Handshake(ctx);
  }

  void Handshake(PumpContext& ctx) {
    ClientStream::Result r = stream_->Handshake();
    if (r.io == ClientStream::Io::kWouldBlock) {
      // Level-triggered, on what the handshake waits for (a flight to send needs EPOLLOUT).
      if (!WatchFd(client_fd(), kDownstreamSlot, stream_->WaitEvents(), ctx, down_watched_ ? EPOLL_CTL_MOD : EPOLL_CTL_ADD)) {
        return Fail(NotProxiedRecord::Stage::kTls, "tls_handshake_failed", errno, "TLS handshake failed: cannot watch the socket", ctx);
      }
      down_watched_ = true;
      return;
    }
    if (r.io != ClientStream::Io::kOk) {
      return Fail(NotProxiedRecord::Stage::kTls, "tls_handshake_failed", 0, "TLS handshake failed: " + stream_->failure(), ctx);
    }
    if (down_watched_) epoll_ctl(ctx.epoll_fd, EPOLL_CTL_DEL, client_fd(), nullptr);
    down_watched_ = false;
    state_ = State::kConnecting;
    deadline_ms_ = ctx.now_ms + acceptor_.config().connect_timeout_ms;
    Connect(ctx);
  }

  void ReadHeader(PumpContext& ctx) {
    char chunk[kMaxProxyHeaderBytes];
    for (;;) {
      size_t room = kMaxProxyHeaderBytes - std::min(read_.size(), kMaxProxyHeaderBytes);
      if (room == 0) return acceptor_.HandBack(*this, ctx);  // too long: JS refuses it
      ssize_t n = read(downstream_, chunk, room);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        if (!down_watched_) {
          if (!WatchFd(downstream_, kDownstreamSlot, EPOLLIN | EPOLLRDHUP, ctx)) return acceptor_.HandBack(*this, ctx);
          down_watched_ = true;
        }
        return;
      }
      // End of stream or an error before a whole header: JS reports it as it always has.
      if (n <= 0) return acceptor_.HandBack(*this, ctx);
      read_.append(chunk, static_cast<size_t>(n));
      switch (ParseProxyV2(read_.data(), read_.size(), &header_)) {
        case ProxyV2Parse::kIncomplete: continue;
        case ProxyV2Parse::kNotAccepted: return acceptor_.HandBack(*this, ctx);
        case ProxyV2Parse::kComplete:
          header_done_ = true;
          if (down_watched_) epoll_ctl(ctx.epoll_fd, EPOLL_CTL_DEL, downstream_, nullptr);
          down_watched_ = false;
          state_ = State::kConnecting;
          deadline_ms_ = ctx.now_ms + acceptor_.config().connect_timeout_ms;
          return HeaderDone(ctx);
      }
    }
  }

  // After the PROXY header (or at once): an http listener serves the connection, the others dial.
  void Proceed(PumpContext& ctx) {
    if (acceptor_.config().http) return acceptor_.Serve(*this, ctx);
    Connect(ctx);
  }

  void Connect(PumpContext& ctx) {
    const FastEndpoint& endpoint = acceptor_.config().endpoint;
    upstream_ = socket(endpoint.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (upstream_ < 0) return DialFailed(errno, ctx);
    if (endpoint.tcp) SetNoDelay(upstream_);
    int rc;
    do {
      rc = connect(upstream_, reinterpret_cast<const sockaddr*>(&endpoint.address), endpoint.length);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) return acceptor_.Pump(*this, ctx);  // a Unix socket with room in its queue
    // Refused, no such socket, a full Unix accept queue (EAGAIN): the JS path retries, holds
    // or refuses, and logs why.
    if (errno != EINPROGRESS) return DialFailed(errno, ctx);
    if (!WatchFd(upstream_, kUpstreamSlot, EPOLLOUT, ctx)) return DialFailed(errno, ctx);
    up_watched_ = true;
  }

  void ConnectDone(PumpContext& ctx) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(upstream_, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err == 0) return acceptor_.Pump(*this, ctx);
    DialFailed(err, ctx);
  }

  Acceptor& acceptor_;
  int downstream_;  // -1 once stream_ owns it
  std::unique_ptr<TlsClientStream> stream_;
  int upstream_ = -1;
  sockaddr_storage peer_;
  Connection::Tag tags_[2];
  State state_;
  int64_t deadline_ms_;
  bool down_watched_ = false;
  bool up_watched_ = false;
  bool header_done_ = false;
  std::string read_;
  ProxyV2Header header_;
  int64_t started_ms_;
};

FastBatch::~FastBatch() {
  for (FallbackRecord& f : fallbacks) {
    if (f.fd >= 0) close(f.fd);
  }
}

FastListener::FastListener(FastListenerConfig config, size_t threads, Deliver deliver)
    : config_(std::move(config)), threads_accepting_(threads), deliver_(std::move(deliver)) {}

FastListener::~FastListener() {
  if (config_.listen_fd >= 0) close(config_.listen_fd);
}

bool FastListener::TryAcquire() {
  int64_t now = active_.fetch_add(1, std::memory_order_relaxed);
  if (config_.max_connections > 0 && now >= config_.max_connections) {
    active_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void FastListener::SetTlsContext(std::shared_ptr<TlsContext> context) {
  std::lock_guard<std::mutex> lock(tls_mutex_);
  tls_context_.swap(context);
}  // the old context is freed here, or with the last connection that still uses it

std::shared_ptr<TlsContext> FastListener::tls_context() {
  std::lock_guard<std::mutex> lock(tls_mutex_);
  return tls_context_;
}

void FastListener::ThreadStopped() {
  if (threads_accepting_.fetch_sub(1) != 1) return;
  close(config_.listen_fd);
  config_.listen_fd = -1;
}

Acceptor::Acceptor(std::shared_ptr<FastListener> listener, Reactor& reactor)
    : listener_(std::move(listener)), reactor_(reactor), batch_(std::make_unique<FastBatch>()) {
  tag_ = Connection::Tag{nullptr, kListenSlot, this};
}

Acceptor::~Acceptor() = default;  // dials close their fds; pumped connections belong to the reactor

void Acceptor::Watch(bool on) {
  if (on == watching_) return;
  if (on) {
    // Level-triggered, one waiter woken per connection: several pump threads share the socket.
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.ptr = &tag_;
    if (epoll_ctl(reactor_.epoll_fd(), EPOLL_CTL_ADD, listener_->config().listen_fd, &ev) < 0) return;
  } else {
    epoll_ctl(reactor_.epoll_fd(), EPOLL_CTL_DEL, listener_->config().listen_fd, nullptr);
  }
  watching_ = on;
}

void Acceptor::Start(PumpContext& ctx) {
  accepting_ = true;
  reactor_.Hook(this);
  Watch(true);
}

void Acceptor::StopAccepting(PumpContext& ctx) {
  if (!accepting_) return;
  accepting_ = false;
  Watch(false);
  listener_->ThreadStopped();
  // Connections still being set up go to JS, which tracks and drains them like its own: after
  // the stop, every connection of this thread is either pumping or committed to TLS (both
  // counted as accepted, and reported when they end) or JS's.
  std::vector<Dial*> dials;
  for (auto& entry : dials_) {
    if (!entry.first->committed()) dials.push_back(entry.first);
  }
  for (Dial* d : dials) HandBack(*d, ctx);
  batch_->stopped = true;
}

void Acceptor::AbortAll(PumpContext& ctx) {
  std::vector<Dial*> dials;
  for (auto& entry : dials_) dials.push_back(entry.first);
  for (Dial* d : dials) {
    // Accepted, never pumped: reported as a connection aborted at once (a committed one was
    // counted as accepted when its handshake started).
    d->Unwatch(ctx);
    ClosedRecord r;
    r.client = d->header_read() && d->header().has_addresses ? DescribeIpEndpoint(d->header().source) : DescribeIpEndpoint(d->peer());
    r.duration_ms = ctx.now_ms - d->started_ms();
    if (!d->committed()) batch_->accepted++;
    batch_->closed.push_back(std::move(r));
    listener_->Release();
    Retire(*d);  // its destructor closes both fds
  }
  std::vector<uint64_t> ids;
  for (auto& entry : sessions_) ids.push_back(entry.first);
  for (uint64_t id : ids) {
    auto tunnel = tunnels_.find(id);
    if (tunnel != tunnels_.end()) tunnel->second->End(CloseCause::kAborted, ctx);  // reports through TunnelEnded
    else reactor_.AbortNow(id, ctx);  // reports through OnConnectionEnd
  }
  std::vector<HttpSession*> sessions;
  for (auto& entry : http_sessions_) sessions.push_back(entry.first);
  for (HttpSession* s : sessions) s->Abort(ctx);  // each reports through SessionEnded
}

void Acceptor::Remove(PumpContext& ctx) {
  StopAccepting(ctx);
  PruneUpstreams(INT64_MAX);
  Flush();  // the last batch, if any
  reactor_.Unhook(this);
}

void Acceptor::Flush() {
  batch_started_ms_ = -1;
  if (batch_->empty()) return;
  // Delivered: JS owns the batch. Refused (JS closed the listener): its destructor closes the
  // handed-back fds, and a fresh batch starts.
  listener_->Post(batch_);
  batch_ = std::make_unique<FastBatch>();
}

void Acceptor::OnEvents(int slot, uint32_t events, PumpContext& ctx) {
  if (accepting_) AcceptSome(ctx);
}

void Acceptor::AcceptSome(PumpContext& ctx) {
  const int listen_fd = listener_->config().listen_fd;
  for (int i = 0; i < kAcceptBurst; i++) {
    sockaddr_storage peer{};
    socklen_t len = sizeof(peer);
    int fd = accept4(listen_fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;  // that client gave up; next one
      if (errno != EAGAIN) {
        // Out of fds or memory: stop watching for a moment rather than spin on a full queue.
        Watch(false);
        paused_until_ms_ = ctx.now_ms + kAcceptPauseMs;
      }
      return;
    }
    if (!listener_->TryAcquire()) {
      close(fd);  // what Node's server.maxConnections does
      batch_->rejected++;
      continue;
    }
    if (peer.ss_family == AF_INET || peer.ss_family == AF_INET6) SetNoDelay(fd);
    auto owned = std::make_unique<Dial>(*this, fd, peer, ctx.now_ms);
    Dial* dial = owned.get();
    dials_.emplace(dial, std::move(owned));
    dial->Begin(ctx);
  }
}

void Acceptor::Pump(Dial& dial, PumpContext& ctx) {
  const FastListenerConfig& config = listener_->config();
  dial.Unwatch(ctx);
  // Where the client came from and where it connected to: the received PROXY header's addresses
  // when it had some, else this socket's own (as tcp-proxy.ts decides).
  sockaddr_storage source = dial.peer();
  sockaddr_storage destination{};
  bool from_header = dial.header_read() && dial.header().has_addresses;
  if (from_header) {
    source = dial.header().source;
    destination = dial.header().destination;
  }
  if (config.send_proxy && !from_header) {
    socklen_t len = sizeof(destination);
    // Unknown (a failure here) leaves the family unset, and the header says LOCAL.
    if (getsockname(dial.client_fd(), reinterpret_cast<sockaddr*>(&destination), &len) < 0) destination = sockaddr_storage{};
  }
  if (dial.committed()) {
    // TLS: the bytes read so far went into the handshake; what comes next is decrypted.
    TlsTunnel::Options options;
    options.id = next_fast_id.fetch_add(1, std::memory_order_relaxed);
    if (config.send_proxy) options.head_up = EncodeProxyV2(&source, &destination);
    const size_t header_bytes = options.head_up.size();
    options.client = dial.TakeStream();
    options.upstream_fd = dial.TakeUpstream();
    options.idle_timeout_ms = config.idle_timeout_ms;
    options.on_end = [this](TlsTunnel& tunnel, PumpContext&) { TunnelEnded(tunnel); };
    const uint64_t id = options.id;
    sessions_.emplace(id, Session{DescribeIpEndpoint(source), header_bytes});
    Retire(dial);
    TlsTunnel* tunnel = tunnels_.emplace(id, std::make_unique<TlsTunnel>(std::move(options))).first->second.get();
    tunnel->Start(ctx);  // may end at once (TunnelEnded)
    return;
  }
  std::string read = dial.TakeRead();
  Connection::Options options;
  size_t header_bytes = 0;
  if (config.send_proxy) {
    options.head_up = EncodeProxyV2(&source, &destination);
    header_bytes = options.head_up.size();
  }
  options.head_up.append(read, dial.header_length(), std::string::npos);
  options.id = next_fast_id.fetch_add(1, std::memory_order_relaxed);
  options.downstream_fd = dial.TakeDownstream();
  options.upstream_fd = dial.TakeUpstream();
  options.idle_timeout_ms = config.idle_timeout_ms;
  options.owner = this;
  sessions_.emplace(options.id, Session{DescribeIpEndpoint(source), header_bytes});
  batch_->accepted++;
  Retire(dial);
  reactor_.Adopt(std::make_unique<Connection>(std::move(options)), ctx);
}

void Acceptor::HandBack(Dial& dial, PumpContext& ctx) {
  dial.Unwatch(ctx);
  FallbackRecord r;
  r.fd = dial.TakeDownstream();
  r.head = dial.TakeRead();
  int upstream = dial.TakeUpstream();
  if (upstream >= 0) close(upstream);
  batch_->fallbacks.push_back(std::move(r));
  Retire(dial);
}

void Acceptor::NotProxied(Dial& dial, NotProxiedRecord record, PumpContext& ctx) {
  dial.Unwatch(ctx);
  record.client = dial.header_read() && dial.header().has_addresses ? DescribeIpEndpoint(dial.header().source) : DescribeIpEndpoint(dial.peer());
  record.duration_ms = ctx.now_ms - dial.started_ms();
  batch_->not_proxied.push_back(std::move(record));
  listener_->Release();
  Retire(dial);  // its destructor closes the fds
}

void Acceptor::TunnelEnded(TlsTunnel& tunnel) {
  auto it = tunnels_.find(tunnel.id());
  if (it == tunnels_.end()) return;
  Report(tunnel.id(), tunnel.outcome());
  retired_tunnels_.push_back(std::move(it->second));  // freed after this batch of events
  tunnels_.erase(it);
}

void Acceptor::ExpireIdleTunnels(PumpContext& ctx) {
  std::vector<TlsTunnel*> expired;
  for (auto& entry : tunnels_) {
    if (entry.second->IdleExpired(ctx.now_ms)) expired.push_back(entry.second.get());
  }
  for (TlsTunnel* t : expired) t->End(CloseCause::kIdleTimeout, ctx);
}

void Acceptor::Serve(Dial& dial, PumpContext& ctx) {
  dial.Unwatch(ctx);
  HttpClient client;
  const sockaddr_storage& source = dial.header_read() && dial.header().has_addresses ? dial.header().source : dial.peer();
  client.label = DescribeIpEndpoint(source);
  if (!client.label.empty()) {
    // "1.2.3.4:5" / "[::1]:5" → address and port, as the JS path keeps them.
    size_t colon = client.label.rfind(':');
    client.port = std::atoi(client.label.c_str() + colon + 1);
    client.address = client.label[0] == '[' ? client.label.substr(1, colon - 2) : client.label.substr(0, colon);
  }
  std::string read = dial.TakeRead();
  uint64_t id = next_fast_id.fetch_add(1, std::memory_order_relaxed);
  auto owned = std::make_unique<HttpSession>(*this, *listener_->config().http, dial.TakeDownstream(), std::move(client), id, ctx.now_ms);
  HttpSession* session = owned.get();
  http_sessions_.emplace(session, std::move(owned));
  batch_->accepted++;
  Retire(dial);
  session->Begin(ctx, read.substr(dial.header_length()));
}

void Acceptor::RecordRequest(HttpRequestRecord record) { batch_->requests.push_back(std::move(record)); }

void Acceptor::CountRequest(const std::string& route, int status, double duration_ms) {
  const std::vector<double>& bounds = listener_->config().http->buckets_seconds;
  RouteAggregate* a = nullptr;
  for (RouteAggregate& r : batch_->routes) {
    if (r.route == route) a = &r;
  }
  if (a == nullptr) {
    batch_->routes.emplace_back();
    a = &batch_->routes.back();
    a->route = route;
    a->per_bucket.assign(bounds.size() + 1, 0);
  }
  // As observe() in proxy-inner/http-ingress/metrics.ts: class by hundreds digit, first bound >= value.
  a->by_class[std::min(9, std::max(0, status / 100))]++;
  double seconds = duration_ms / 1000;
  size_t bucket = 0;
  while (bucket < bounds.size() && seconds > bounds[bucket]) bucket++;
  a->per_bucket[bucket]++;
  a->sum_seconds += seconds;
  a->count++;
}

void Acceptor::SessionHandedBack(HttpSession& session, FallbackRecord record, uint64_t bytes_in, uint64_t bytes_out, PumpContext& ctx) {
  // Counted against max_connections until JS releases it; its bytes so far are JS's to sum.
  batch_->fallbacks.push_back(std::move(record));
  RetireSession(session);
}

void Acceptor::SessionEnded(HttpSession& session, uint64_t bytes_in, uint64_t bytes_out, int64_t duration_ms) {
  ClosedSummary& s = batch_->summed;
  s.count++;
  s.bytes_in += bytes_in;
  s.bytes_out += bytes_out;
  s.duration_ms += duration_ms;
  s.copied++;  // nothing is spliced: every byte went through the engine
  listener_->Release();
  RetireSession(session);
}

void Acceptor::RetireSession(HttpSession& session) {
  auto it = http_sessions_.find(&session);
  if (it == http_sessions_.end()) return;
  retired_.push_back(std::move(it->second));
  http_sessions_.erase(it);
}

int Acceptor::TakeUpstream(int endpoint, int64_t now_ms) {
  if (endpoint < 0 || static_cast<size_t>(endpoint) >= idle_upstreams_.size()) return -1;
  std::vector<IdleUpstream>& idle = idle_upstreams_[static_cast<size_t>(endpoint)];
  while (!idle.empty()) {
    IdleUpstream u = idle.back();
    idle.pop_back();
    char c;
    ssize_t n = recv(u.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    bool still_idle = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (still_idle && now_ms - u.since_ms < listener_->config().http->upstream_idle_ms) return u.fd;
    close(u.fd);  // closed by the app, or idle too long
  }
  return -1;
}

void Acceptor::GiveUpstream(int endpoint, int fd, int64_t now_ms) {
  // Enough for the sessions of one thread; beyond it a connection is cheaper closed than kept.
  constexpr size_t kMaxIdlePerEndpoint = 64;
  if (endpoint < 0) {
    close(fd);
    return;
  }
  if (idle_upstreams_.size() <= static_cast<size_t>(endpoint)) idle_upstreams_.resize(static_cast<size_t>(endpoint) + 1);
  std::vector<IdleUpstream>& idle = idle_upstreams_[static_cast<size_t>(endpoint)];
  if (idle.size() >= kMaxIdlePerEndpoint) {
    close(fd);
    return;
  }
  idle.push_back(IdleUpstream{fd, now_ms});
}

void Acceptor::PruneUpstreams(int64_t now_ms) {
  if (!listener_->config().http) return;
  int64_t limit = listener_->config().http->upstream_idle_ms;
  for (std::vector<IdleUpstream>& idle : idle_upstreams_) {
    // Oldest first: the front ages out first.
    size_t keep = 0;
    while (keep < idle.size() && (now_ms == INT64_MAX || now_ms - idle[keep].since_ms >= limit)) close(idle[keep++].fd);
    idle.erase(idle.begin(), idle.begin() + static_cast<long>(keep));
  }
}

void Acceptor::Retire(Dial& dial) {
  auto it = dials_.find(&dial);
  if (it == dials_.end()) return;
  retired_.push_back(std::move(it->second));
  dials_.erase(it);
}

void Acceptor::OnConnectionEnd(const Connection& connection, PumpContext& ctx) {
  Report(connection.id(), connection.outcome());
}

void Acceptor::Report(uint64_t id, const PumpOutcome& o) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  uint64_t bytes_in = o.bytes_up > it->second.header_bytes ? o.bytes_up - it->second.header_bytes : 0;
  if (!listener_->config().records && o.error_end < 0) {
    ClosedSummary& s = batch_->summed;
    s.count++;
    s.bytes_in += bytes_in;
    s.bytes_out += o.bytes_down;
    s.duration_ms += o.duration_ms;
    if (o.copied) s.copied++;
    sessions_.erase(it);
    listener_->Release();
    return;
  }
  ClosedRecord r;
  r.client = std::move(it->second.client);
  r.bytes_in = bytes_in;
  r.bytes_out = o.bytes_down;
  r.duration_ms = o.duration_ms;
  r.closed_by = o.closed_by;
  r.error_end = o.error_end;
  r.error_errno = o.error_errno;
  r.copied = o.copied;
  sessions_.erase(it);
  listener_->Release();
  batch_->closed.push_back(std::move(r));
}

bool Acceptor::AfterEvents(PumpContext& ctx) {
  if (accepting_ && !watching_ && ctx.now_ms >= paused_until_ms_) Watch(true);
  if (!dials_.empty()) {
    std::vector<Dial*> dials;
    for (auto& entry : dials_) dials.push_back(entry.first);
    for (Dial* d : dials) d->CheckDeadline(ctx);
  }
  if (!tunnels_.empty() && ctx.now_ms >= next_idle_check_ms_) {
    ExpireIdleTunnels(ctx);
    next_idle_check_ms_ = ctx.now_ms + kIdleCheckMs;
  }
  // Sessions' deadlines have 100 ms resolution: a check costs a walk over every session.
  if (!http_sessions_.empty() && ctx.now_ms - sessions_checked_ms_ >= 100) {
    sessions_checked_ms_ = ctx.now_ms;
    std::vector<HttpSession*> sessions;
    for (auto& entry : http_sessions_) sessions.push_back(entry.first);
    for (HttpSession* s : sessions) s->CheckDeadline(ctx);
  }
  if (ctx.now_ms - upstreams_pruned_ms_ >= 1000) {
    upstreams_pruned_ms_ = ctx.now_ms;
    PruneUpstreams(ctx.now_ms);
  }
  retired_.clear();
  retired_tunnels_.clear();
  if (batch_->empty()) return false;
  if (batch_started_ms_ < 0) batch_started_ms_ = ctx.now_ms;
  bool urgent = batch_->stopped || !batch_->fallbacks.empty() || batch_->size() >= kBatchMaxRecords;
  if (!urgent && ctx.now_ms - batch_started_ms_ < kBatchWindowMs) return true;
  Flush();
  return false;
}

}  // namespace enclaver
