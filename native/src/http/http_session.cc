#include "http/http_session.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace enclaver {

namespace {

constexpr int kClientSlot = 0;
constexpr int kUpstreamSlot = 1;
// Edge-triggered. EPOLLOUT is added only while a write is blocked (WatchWrites): a Unix peer
// reading what we wrote would otherwise wake this thread once per response for nothing.
constexpr uint32_t kWatch = EPOLLIN | EPOLLRDHUP | EPOLLET;
constexpr uint32_t kReadable = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
constexpr uint32_t kWritable = EPOLLOUT | EPOLLHUP | EPOLLERR;
// Per direction: reading stops while the next buffer holds this much.
constexpr size_t kMaxBuffered = 256 * 1024;
constexpr size_t kReadChunk = 64 * 1024;
const std::string kNoRoute = "-";  // the access line's route of a request that got none
// A request whose bytes sent so far exceed this cannot be retried or handed back.
constexpr size_t kMaxReplay = 64 * 1024;
// Largest response head accepted from the app.
constexpr size_t kMaxResponseHead = 64 * 1024;

// "Tue, 01 Dec 2026 10:15:00 GMT", as Node's utcDate(); cached per second on each thread.
const std::string& HttpDate() {
  thread_local time_t cached_at = 0;
  thread_local std::string cached;
  time_t now = time(nullptr);
  if (now != cached_at) {
    tm t{};
    gmtime_r(&now, &t);
    char buf[64];
    size_t n = strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &t);
    cached.assign(buf, n);
    cached_at = now;
  }
  return cached;
}

bool PeerStillIdle(int fd) {
  char c;
  ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// RFC 7239 quoting, as quoted() in headers.ts.
std::string Quoted(const std::string& v) {
  bool plain = !v.empty();
  for (char c : v) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok) plain = false;
  }
  if (plain) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

double MsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

HttpSession::HttpSession(Acceptor& acceptor, const HttpConfig& config, int fd, HttpClient client, uint64_t id, int64_t now_ms)
    : acceptor_(acceptor),
      config_(config),
      client_(PlainClientStream(fd)),
      facts_(std::move(client)),
      id_(id),
      started_ms_(now_ms),
      started_(std::chrono::steady_clock::now()),
      head_started_ms_(now_ms),
      idle_since_ms_(now_ms),
      last_activity_ms_(now_ms) {
  tags_[kClientSlot] = TaskTag{this, kClientSlot};
  tags_[kUpstreamSlot] = TaskTag{this, kUpstreamSlot};
}

HttpSession::~HttpSession() {
  if (up_fd_ >= 0) close(up_fd_);
}

void HttpSession::Begin(PumpContext& ctx, std::string read) {
  total_in_ = read.size();
  in_ = std::move(read);
  epoll_event ev{};
  ev.events = client_watch_ = kWatch;
  ev.data.ptr = &tags_[kClientSlot];
  if (epoll_ctl(ctx.epoll_fd, EPOLL_CTL_ADD, client_->fd(), &ev) < 0) return HandBack(ctx);
  Drive(ctx);
}

void HttpSession::OnEvents(int slot, uint32_t events, PumpContext& ctx) {
  if (phase_ == Phase::kDone) return;
  if (slot == kClientSlot) {
    // A TLS stream that needs a write to make a read progress asks for EPOLLOUT (WaitEvents):
    // either edge then retries both directions.
    bool any = client_->WaitEvents() != EPOLLIN;
    client_ready_in_ |= any || (events & kReadable) != 0;
    client_ready_out_ |= any || (events & kWritable) != 0;
    // The end may have come with the last bytes: a short read's "drained" must not hide it.
    client_hup_ |= (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
  } else if (up_fd_ >= 0) {
    up_ready_in_ |= (events & kReadable) != 0;
    up_ready_out_ |= (events & kWritable) != 0;
    up_hup_ |= (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
  }
  if (slot == kUpstreamSlot && phase_ == Phase::kConnecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(up_fd_, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err != 0) return UpstreamFailed("upstream_connect", ctx);
    if (!(events & EPOLLOUT)) return;
    phase_ = Phase::kExchange;
  }
  Drive(ctx);
}

void HttpSession::Drive(PumpContext& ctx) {
  for (;;) {
    bool progress = false;
    progress |= FlushClient(ctx);
    if (phase_ == Phase::kDone) return;
    progress |= FlushUpstream(ctx);
    if (phase_ == Phase::kDone) return;
    progress |= ReadClient(ctx);
    if (phase_ == Phase::kDone) return;
    progress |= ReadUpstream(ctx);
    if (phase_ == Phase::kDone) return;
    progress |= Advance(ctx);
    if (phase_ == Phase::kDone) return;
    if (!progress) return;
    last_activity_ms_ = ctx.now_ms;
  }
}

bool HttpSession::FlushClient(PumpContext& ctx) {
  bool moved = false;
  while (down_off_ < down_out_.size() && client_ready_out_) {
    ClientStream::Result r = client_->Write(down_out_.data() + down_off_, down_out_.size() - down_off_);
    if (r.io == ClientStream::Io::kWouldBlock) {
      client_ready_out_ = false;
      WatchWrites(kClientSlot, client_->fd(), client_->WaitEvents(), ctx);
      break;
    }
    if (r.io != ClientStream::Io::kOk) {
      // The client is gone: an exchange in flight ends as the JS path's 'client_gone'.
      if (phase_ == Phase::kExchange || phase_ == Phase::kConnecting) Record(response_head_done_ ? status_ : 499, "client_gone");
      End(ctx);
      return false;
    }
    down_off_ += r.bytes;
    total_out_ += r.bytes;
    moved = true;
  }
  if (down_off_ == down_out_.size() && down_off_ > 0) {
    down_out_.clear();
    down_off_ = 0;
  }
  if (phase_ == Phase::kClosing && down_out_.empty()) {
    client_->ShutdownWrite();
    End(ctx);
  }
  return moved;
}

bool HttpSession::FlushUpstream(PumpContext& ctx) {
  if (phase_ != Phase::kExchange || up_fd_ < 0) return false;
  bool moved = false;
  while (up_off_ < up_out_.size() && up_ready_out_) {
    ssize_t n = send(up_fd_, up_out_.data() + up_off_, up_out_.size() - up_off_, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      up_ready_out_ = false;
      WatchWrites(kUpstreamSlot, up_fd_, EPOLLOUT, ctx);
      break;
    }
    if (n < 0) {
      UpstreamFailed("upstream_reset", ctx);
      return false;
    }
    up_off_ += static_cast<size_t>(n);
    moved = true;
  }
  if (up_off_ == up_out_.size() && up_off_ > 0) {
    up_out_.clear();
    up_off_ = 0;
  }
  return moved;
}

bool HttpSession::ReadClient(PumpContext& ctx) {
  bool want = false;
  if (phase_ == Phase::kHead) want = PendingIn() <= config_.max_header_bytes;
  else if (phase_ == Phase::kConnecting || phase_ == Phase::kExchange) want = RequestBodyPending() && up_out_.size() < kMaxBuffered;
  if (!want || !client_ready_in_ || client_eof_) return MoveBody(ctx);
  char buf[kReadChunk];
  ClientStream::Result r = client_->Read(buf, sizeof(buf));
  if (r.io == ClientStream::Io::kWouldBlock) {
    client_ready_in_ = client_->HasBuffered() || std::exchange(client_hup_, false);
    return MoveBody(ctx);
  }
  if (r.io == ClientStream::Io::kEof) {
    client_eof_ = true;
    return true;
  }
  if (r.io == ClientStream::Io::kError) {
    if (phase_ == Phase::kExchange || phase_ == Phase::kConnecting) Record(response_head_done_ ? status_ : 499, "client_gone");
    End(ctx);
    return false;
  }
  if (in_off_ == in_.size()) in_.clear(), in_off_ = 0;
  if (phase_ == Phase::kHead && PendingIn() == 0 && served_ > 0) head_started_ms_ = ctx.now_ms;
  in_.append(buf, r.bytes);
  total_in_ += r.bytes;
  MoveBody(ctx);
  return true;
}

// Request body bytes already read go to the app's buffer (and the replay copy while it is small):
// a Content-Length body as it is, a chunked one validated and re-framed.
bool HttpSession::MoveBody(PumpContext& ctx) {
  if (!RequestBodyPending() || PendingIn() == 0 || (phase_ != Phase::kExchange && phase_ != Phase::kConnecting)) return false;
  size_t before = up_out_.size();
  if (body_chunked_) {
    size_t used = 0;
    ChunkedDecoder::Result r = request_chunks_.Feed(std::string_view(in_.data() + in_off_, PendingIn()), &used, &up_out_);
    in_off_ += used;
    if (r == ChunkedDecoder::Result::kBad) {
      BadRequestBody(ctx);
      return false;
    }
    if (r == ChunkedDecoder::Result::kDone) body_chunked_ = false;
  } else {
    size_t n = static_cast<size_t>(std::min<int64_t>(body_left_, static_cast<int64_t>(PendingIn())));
    up_out_.append(in_, in_off_, n);
    in_off_ += n;
    body_left_ -= static_cast<int64_t>(n);
  }
  size_t added = up_out_.size() - before;
  if (replayable_) {
    if (replay_.size() + added > kMaxReplay) replayable_ = false, replay_.clear();
    else replay_.append(up_out_, before, added);
  }
  return true;
}

void HttpSession::BadRequestBody(PumpContext& ctx) {
  // The app's connection goes with the truncated request: it never sees a complete one.
  DetachUpstream(ctx, false);
  body_chunked_ = false;
  if (response_head_done_) {
    Record(status_, "bad_chunked_body");
    return End(ctx);
  }
  Record(400, "bad_chunked_body");
  down_out_.append(config_.bad_request_answer);
  appended_out_ += config_.bad_request_answer.size();
  phase_ = Phase::kClosing;
  last_activity_ms_ = ctx.now_ms;
  FlushClient(ctx);
}

bool HttpSession::ReadUpstream(PumpContext& ctx) {
  if (phase_ != Phase::kExchange || up_fd_ < 0 || !up_ready_in_ || up_eof_ || down_out_.size() >= kMaxBuffered) return false;
  char buf[kReadChunk];
  ssize_t n;
  do {
    n = recv(up_fd_, buf, sizeof(buf), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    up_ready_in_ = false;
    return false;
  }
  if (n < 0) {
    UpstreamFailed("upstream_reset", ctx);
    return false;
  }
  if (n == 0) {
    up_eof_ = true;
    return true;
  }
  // A short read drained the socket (see plain_stream.cc): the next bytes raise a new edge.
  if (static_cast<size_t>(n) < sizeof(buf)) up_ready_in_ = std::exchange(up_hup_, false);
  if (up_in_off_ == up_in_.size()) up_in_.clear(), up_in_off_ = 0;
  up_in_.append(buf, static_cast<size_t>(n));
  return true;
}

bool HttpSession::Advance(PumpContext& ctx) {
  if (phase_ == Phase::kExchange) return ProcessResponse(ctx);
  if (phase_ != Phase::kHead) return false;
  if (PendingIn() == 0) {
    if (client_eof_) End(ctx);  // a clean end between requests
    return false;
  }
  RequestHead head;
  std::string_view pending(in_.data() + in_off_, PendingIn());
  switch (ParseRequestHead(pending, config_.max_header_bytes, config_.max_headers, &head)) {
    case HeadParse::kIncomplete:
      // A partial head and the client's end: JS sees both and answers as Node does.
      if (client_eof_) HandBack(ctx);
      return false;
    case HeadParse::kHandBack:
      HandBack(ctx);
      return false;
    case HeadParse::kComplete:
      break;
  }
  if (head.chunked) {
    // Framing already wrong in what came with the head: JS refuses it before the app sees anything.
    ChunkedDecoder probe;
    std::string scratch;
    size_t used = 0;
    if (probe.Feed(pending.substr(head.head_length), &used, &scratch) == ChunkedDecoder::Result::kBad) {
      HandBack(ctx);
      return false;
    }
  }
  for (const std::string& local : config_.local_paths) {
    if (head.path == local) {
      HandBack(ctx);
      return false;
    }
  }
  RouteHit hit = config_.routes.Match(Lower(head.host_name), head.path);
  if (hit.name == nullptr || hit.cluster < 0) {
    HandBack(ctx);  // JS answers 404 and logs no_route
    return false;
  }
  Dispatch(head, hit, ctx);
  return true;
}

void HttpSession::Dispatch(const RequestHead& head, const RouteHit& hit, PumpContext& ctx) {
  // The exchange's facts, copied out of in_ before it moves.
  method_.assign(head.method);
  host_.assign(head.host);
  path_.assign(head.path);
  route_ = hit.name;
  request_started_ = std::chrono::steady_clock::now();
  request_in_start_ = total_in_ - PendingIn();
  request_out_start_ = appended_out_;
  head_method_ = head.head_method;
  close_after_ = head.close;
  body_left_ = head.chunked ? 0 : head.content_length;
  body_chunked_ = head.chunked;
  request_chunks_ = ChunkedDecoder();
  response_head_done_ = false;
  status_ = 0;
  up_retried_ = false;
  replayable_ = true;
  chunked_ = ChunkedDecoder();

  // The head as upstreamRequestHeaders() writes it: hop-by-hop, Connection-named, client
  // claims and Expect dropped, then our forwarding fields from what the proxy knows.
  std::vector<std::string> named;
  for (const HttpField& f : head.fields) {
    if (Lower(f.name) == "connection") ConnectionTokens(f.value, &named);
  }
  std::string& out = replay_;
  out.clear();
  out.reserve(head.head_length + 256);
  out.append(head.method).append(" ").append(head.target).append(" HTTP/1.1\r\n");
  for (const HttpField& f : head.fields) {
    std::string lower = Lower(f.name);
    if (IsHopByHop(lower) || lower == "expect" || lower == "forwarded" || lower == "x-forwarded-for" || lower == "x-forwarded-proto" ||
        lower == "x-forwarded-host" || lower == "x-forwarded-port" || lower == "x-real-ip") {
      continue;
    }
    if (std::find(named.begin(), named.end(), lower) != named.end()) continue;
    out.append(f.name).append(": ").append(f.value).append("\r\n");
  }
  if (!facts_.address.empty()) out.append("x-forwarded-for: ").append(facts_.address).append("\r\n");
  out.append("x-forwarded-proto: ").append(config_.proto).append("\r\n");
  out.append("x-forwarded-host: ").append(head.host).append("\r\n");
  out.append("forwarded: ");
  if (!facts_.address.empty()) {
    out.append("for=").append(Quoted(facts_.address.find(':') != std::string::npos ? "[" + facts_.address + "]" : facts_.address));
  } else {
    out.append("for=unknown");
  }
  out.append(";proto=").append(config_.proto).append(";host=").append(Quoted(std::string(head.host))).append("\r\n");
  // The body's framing is ours on this leg, as undici's is on the JS path.
  if (head.chunked) out.append("transfer-encoding: chunked\r\n");
  out.append("\r\n");
  rewritten_length_ = out.size();
  request_head_.assign(in_, in_off_, head.head_length);
  in_off_ += head.head_length;
  up_out_ = replay_;
  up_off_ = 0;

  // The app connection: this session's own when it is to the same app and still idle, else a
  // pooled one of this thread, else a new one.
  // No edge since it went quiet means nothing arrived on it (no close, no stray bytes): no need to look.
  if (up_fd_ >= 0 && (up_endpoint_ != hit.cluster || (up_ready_in_ && !PeerStillIdle(up_fd_)))) {
    DetachUpstream(ctx, up_endpoint_ != hit.cluster);
  }
  if (up_fd_ >= 0) {
    up_reused_ = true;
    phase_ = Phase::kExchange;
    up_ready_out_ = true;
  } else {
    int pooled = acceptor_.TakeUpstream(hit.cluster, ctx.now_ms);
    if (pooled >= 0) {
      up_endpoint_ = hit.cluster;
      up_reused_ = true;
      if (!AttachUpstream(pooled, ctx)) return;
      phase_ = Phase::kExchange;
    } else if (!Connect(hit.cluster, ctx)) {
      return;
    }
  }
  MoveBody(ctx);
}

bool HttpSession::AttachUpstream(int fd, PumpContext& ctx) {
  up_fd_ = fd;
  up_eof_ = up_hup_ = false;
  up_in_.clear();
  up_in_off_ = 0;
  epoll_event ev{};
  ev.events = kWatch | EPOLLOUT;  // EPOLLOUT: a connect in progress completes with it
  ev.data.ptr = &tags_[kUpstreamSlot];
  up_watch_ = ev.events;
  if (epoll_ctl(ctx.epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    close(std::exchange(up_fd_, -1));
    UpstreamFailed("upstream_connect", ctx);
    return false;
  }
  up_ready_in_ = up_ready_out_ = true;
  return true;
}

// Leaves the app connection: to this thread's pool when it is idle and clean, else closed.
void HttpSession::DetachUpstream(PumpContext& ctx, bool reusable) {
  if (up_fd_ < 0) return;
  epoll_ctl(ctx.epoll_fd, EPOLL_CTL_DEL, up_fd_, nullptr);
  if (reusable && !up_eof_ && up_in_off_ == up_in_.size() && PeerStillIdle(up_fd_)) acceptor_.GiveUpstream(up_endpoint_, up_fd_, ctx.now_ms);
  else close(up_fd_);
  up_fd_ = -1;
  up_endpoint_ = -1;
  up_ready_in_ = up_ready_out_ = up_hup_ = false;
}

void HttpSession::WatchWrites(int slot, int fd, uint32_t wanted, PumpContext& ctx) {
  uint32_t& watch = slot == kClientSlot ? client_watch_ : up_watch_;
  uint32_t events = kWatch | wanted;
  if (events == watch) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = &tags_[slot];
  // Failure leaves the old mask: the idle timeout then ends a connection that never wakes.
  if (epoll_ctl(ctx.epoll_fd, EPOLL_CTL_MOD, fd, &ev) == 0) watch = events;
}

bool HttpSession::Connect(int endpoint, PumpContext& ctx) {
  const FastEndpoint& e = config_.endpoints[static_cast<size_t>(endpoint)];
  int fd = socket(e.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    UpstreamFailed("upstream_connect", ctx);
    return false;
  }
  if (e.tcp) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  int rc;
  do {
    rc = connect(fd, reinterpret_cast<const sockaddr*>(&e.address), e.length);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0 && errno != EINPROGRESS) {
    close(fd);
    UpstreamFailed("upstream_connect", ctx);
    return false;
  }
  up_endpoint_ = endpoint;
  up_reused_ = false;
  if (!AttachUpstream(fd, ctx)) return false;
  phase_ = rc == 0 ? Phase::kExchange : Phase::kConnecting;
  connect_deadline_ms_ = ctx.now_ms + acceptor_.config().connect_timeout_ms;
  return true;
}

bool HttpSession::ProcessResponse(PumpContext& ctx) {
  bool progress = false;
  for (;;) {
    std::string_view pending(up_in_.data() + up_in_off_, up_in_.size() - up_in_off_);
    if (!response_head_done_) {
      ResponseHead head;
      switch (ParseResponseHead(pending, kMaxResponseHead, head_method_, &head)) {
        case ResponseParse::kIncomplete:
          if (up_eof_) UpstreamFailed("upstream_reset", ctx);
          return progress;
        case ResponseParse::kBad:
          UpstreamFailed("upstream_bad_response", ctx);
          return false;
        case ResponseParse::kComplete:
          break;
      }
      up_in_off_ += head.head_length;
      progress = true;
      if (head.status < 200) {
        if (head.status == 101) {
          UpstreamFailed("upstream_bad_response", ctx);  // never asked for: no Upgrade is forwarded natively
          return false;
        }
        continue;  // an interim response; the JS path (undici) drops them too
      }
      status_ = head.status;
      framing_ = head.framing;
      response_left_ = head.content_length;
      response_close_ = head.close;
      WriteResponseHead(head);
      response_head_done_ = true;
      continue;
    }
    size_t before = down_out_.size();
    bool complete = false;
    switch (framing_) {
      case BodyFraming::kNone:
        complete = true;
        break;
      case BodyFraming::kLength: {
        size_t n = static_cast<size_t>(std::min<int64_t>(response_left_, static_cast<int64_t>(pending.size())));
        down_out_.append(pending.data(), n);
        up_in_off_ += n;
        response_left_ -= static_cast<int64_t>(n);
        complete = response_left_ == 0;
        if (!complete && up_eof_) {
          UpstreamFailed("upstream_reset", ctx);
          return false;
        }
        break;
      }
      case BodyFraming::kChunked: {
        size_t used = 0;
        ChunkedDecoder::Result r = chunked_.Feed(pending, &used, &down_out_);
        up_in_off_ += used;
        if (r == ChunkedDecoder::Result::kBad) {
          UpstreamFailed("upstream_bad_response", ctx);
          return false;
        }
        complete = r == ChunkedDecoder::Result::kDone;
        if (!complete && up_eof_) {
          UpstreamFailed("upstream_reset", ctx);
          return false;
        }
        break;
      }
      case BodyFraming::kUntilClose: {
        // Re-framed as chunked for the client, as Node's ServerResponse frames a body of unknown length.
        if (!pending.empty()) {
          char size[24];
          int len = snprintf(size, sizeof(size), "%zx\r\n", pending.size());
          down_out_.append(size, static_cast<size_t>(len)).append(pending.data(), pending.size()).append("\r\n");
          up_in_off_ += pending.size();
        }
        if (up_eof_) {
          down_out_.append("0\r\n\r\n");
          complete = true;
        }
        break;
      }
    }
    appended_out_ += down_out_.size() - before;
    progress |= down_out_.size() != before;
    if (complete) {
      FinishExchange(ctx);
      return true;
    }
    return progress;
  }
}

void HttpSession::WriteResponseHead(const ResponseHead& head) {
  std::vector<std::string> named;
  std::vector<std::string> lowers;
  lowers.reserve(head.fields.size());
  for (const HttpField& f : head.fields) {
    lowers.push_back(Lower(f.name));
    if (lowers.back() == "connection") ConnectionTokens(f.value, &named);
  }
  std::string& out = down_out_;
  size_t before = out.size();
  const std::string& reason =
      static_cast<size_t>(head.status) < config_.reasons.size() && !config_.reasons[head.status].empty() ? config_.reasons[head.status] : "unknown";
  out.append("HTTP/1.1 ").append(std::to_string(head.status)).append(" ").append(reason).append("\r\n");
  bool has_date = false, has_length = false;
  // As undici's header object and Node's writeHead: names lower-cased, a repeated field's
  // values together at its first place.
  for (size_t i = 0; i < head.fields.size(); i++) {
    const std::string& name = lowers[i];
    if (IsHopByHop(name) || std::find(named.begin(), named.end(), name) != named.end()) continue;
    if (std::find(lowers.begin(), lowers.begin() + static_cast<long>(i), name) != lowers.begin() + static_cast<long>(i)) continue;
    if (name == "date") has_date = true;
    if (name == "content-length") has_length = true;
    for (size_t j = i; j < head.fields.size(); j++) {
      if (lowers[j] == name) out.append(name).append(": ").append(head.fields[j].value).append("\r\n");
    }
  }
  if (!has_date) out.append("Date: ").append(HttpDate()).append("\r\n");
  if (close_after_) {
    out.append("Connection: close\r\n");
  } else {
    out.append("Connection: keep-alive\r\nKeep-Alive: timeout=").append(std::to_string(config_.keep_alive_timeout_ms / 1000)).append("\r\n");
  }
  bool body = !head_method_ && head.status != 204 && head.status != 304;
  // A chunked or close-delimited app body is re-framed chunked (only those lack a length here).
  if (body && !has_length) out.append("Transfer-Encoding: chunked\r\n");
  out.append("\r\n");
  appended_out_ += out.size() - before;
}

void HttpSession::UpstreamFailed(const char* code, PumpContext& ctx) {
  bool nothing_back = !response_head_done_ && up_in_off_ == up_in_.size();
  bool was_reused = up_reused_;
  bool dial_failed = std::strcmp(code, "upstream_connect") == 0;
  int endpoint = up_endpoint_;
  DetachUpstream(ctx, false);
  // A kept-alive app connection the app had closed: once more on a fresh one, as undici does.
  if (nothing_back && was_reused && !up_retried_ && replayable_ && !dial_failed) {
    up_retried_ = true;
    if (!Connect(endpoint, ctx)) return;
    up_out_ = replay_;
    up_off_ = 0;
    return;
  }
  // Nothing reached the app: JS dials every endpoint of the cluster and answers as it does.
  if (dial_failed && replayable_) {
    in_.replace(0, in_off_, request_head_ + replay_.substr(rewritten_length_));
    in_off_ = 0;
    body_left_ = 0;
    body_chunked_ = false;
    return HandBack(ctx);
  }
  if (!response_head_done_) return BadGateway(code, "the app did not answer", ctx);
  // Mid-body: the client's response cannot be completed, so its connection is closed.
  Record(status_, code);
  End(ctx);
}

void HttpSession::BadGateway(const char* code, const char* message, PumpContext& ctx) {
  std::string body = std::string("{\"error\":\"") + code + "\",\"message\":\"" + message + "\"}";
  size_t before = down_out_.size();
  down_out_.append("HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\ncontent-length: ")
      .append(std::to_string(body.size()))
      .append("\r\nconnection: close\r\nDate: ")
      .append(HttpDate())
      .append("\r\n\r\n")
      .append(body);
  appended_out_ += down_out_.size() - before;
  Record(502, code);
  phase_ = Phase::kClosing;
  last_activity_ms_ = ctx.now_ms;
  FlushClient(ctx);
}

void HttpSession::FinishExchange(PumpContext& ctx) {
  Record(status_, nullptr);
  served_++;
  bool reusable = !response_close_ && framing_ != BodyFraming::kUntilClose && !RequestBodyPending() && up_off_ == up_out_.size();
  if (!reusable) DetachUpstream(ctx, false);
  // The app answered before the whole request body came: the rest cannot be told from a next request.
  if (RequestBodyPending()) close_after_ = true;
  if (close_after_ || client_eof_) {
    phase_ = Phase::kClosing;
    FlushClient(ctx);
    return;
  }
  phase_ = Phase::kHead;
  if (in_off_ > 0) in_.erase(0, in_off_), in_off_ = 0;
  head_started_ms_ = idle_since_ms_ = ctx.now_ms;
  route_ = nullptr;
}

void HttpSession::Record(int status, const char* error) {
  if (!config_.request_records) {
    acceptor_.CountRequest(route_ ? *route_ : kNoRoute, status, MsSince(request_started_));
    route_ = nullptr;
    return;
  }
  HttpRequestRecord r;
  r.conn = id_;
  r.method = method_;
  r.host = host_;
  r.path = path_;
  r.route = route_ ? *route_ : kNoRoute;
  r.status = status;
  r.bytes_in = total_in_ - request_in_start_;
  r.bytes_out = appended_out_ - request_out_start_;
  r.duration_ms = MsSince(request_started_);
  r.client = facts_.label;
  if (error) r.error = error;
  acceptor_.RecordRequest(std::move(r));
  route_ = nullptr;
}

void HttpSession::CheckDeadline(PumpContext& ctx) {
  switch (phase_) {
    case Phase::kHead:
      if (PendingIn() == 0 && served_ > 0) {
        if (ctx.now_ms - idle_since_ms_ >= config_.keep_alive_timeout_ms) End(ctx);  // keep-alive idle: a quiet close
      } else if (ctx.now_ms - head_started_ms_ >= config_.head_timeout_ms) {
        // The JS path's 408, byte for byte, with its access line.
        method_ = host_ = path_ = "-";
        route_ = nullptr;
        request_started_ = std::chrono::steady_clock::now();
        request_in_start_ = total_in_;
        request_out_start_ = appended_out_;
        Record(408, "err_http_request_timeout");
        down_out_.append(config_.timeout_answer);
        appended_out_ += config_.timeout_answer.size();
        phase_ = Phase::kClosing;
        last_activity_ms_ = ctx.now_ms;
        FlushClient(ctx);
      }
      return;
    case Phase::kConnecting:
      if (ctx.now_ms >= connect_deadline_ms_) UpstreamFailed("upstream_connect", ctx);
      return;
    case Phase::kExchange:
    case Phase::kClosing: {
      // A last answer a client never reads must not hold the session without an idle timeout.
      int64_t limit = config_.idle_timeout_ms > 0 ? config_.idle_timeout_ms : phase_ == Phase::kClosing ? config_.head_timeout_ms : 0;
      if (limit > 0 && ctx.now_ms - last_activity_ms_ >= limit) {
        if (phase_ == Phase::kExchange) Record(response_head_done_ ? status_ : 499, "client_gone");
        End(ctx);
      }
      return;
    }
    case Phase::kDone:
      return;
  }
}

void HttpSession::Abort(PumpContext& ctx) {
  if (phase_ == Phase::kDone) return;
  if (phase_ == Phase::kExchange || phase_ == Phase::kConnecting) Record(response_head_done_ ? status_ : 499, "client_gone");
  End(ctx);
}

void HttpSession::HandBack(PumpContext& ctx) {
  if (phase_ == Phase::kDone) return;
  DetachUpstream(ctx, phase_ == Phase::kHead);
  epoll_ctl(ctx.epoll_fd, EPOLL_CTL_DEL, client_->fd(), nullptr);
  phase_ = Phase::kDone;
  FallbackRecord r;
  r.fd = client_->Release();
  r.head = in_.substr(in_off_);
  r.resumed = true;
  r.conn = id_;
  r.client_address = facts_.address;
  r.client_port = facts_.port;
  r.served = served_;
  acceptor_.SessionHandedBack(*this, std::move(r), total_in_ - PendingIn(), total_out_, ctx);
}

void HttpSession::End(PumpContext& ctx) {
  if (phase_ == Phase::kDone) return;
  DetachUpstream(ctx, phase_ == Phase::kHead);
  epoll_ctl(ctx.epoll_fd, EPOLL_CTL_DEL, client_->fd(), nullptr);
  phase_ = Phase::kDone;
  client_.reset();  // closes the client fd
  acceptor_.SessionEnded(*this, total_in_, total_out_, ctx.now_ms - started_ms_);
}

}  // namespace enclaver
