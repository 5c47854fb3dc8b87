#include "fastpath/fastpath_binding.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "addon_state.h"
#include "exports.h"
#include "fastpath/fast_listener.h"
#include "fd.h"
#include "http/http_session.h"
#include "pump/pump_binding.h"
#include "syscall_error.h"

namespace enclaver {

namespace {

// The way batches reach JS. Reactor threads post under the mutex; the main thread closes it
// (fastClose, or environment teardown) under the same mutex, so no post races the release.
struct Delivery {
  static void CallJs(Napi::Env env, Napi::Function callback, Delivery* delivery, FastBatch* batch);
  using Tsfn = Napi::TypedThreadSafeFunction<Delivery, FastBatch, &Delivery::CallJs>;

  std::mutex mutex;
  bool open = true;
  Tsfn tsfn;

  bool Post(std::unique_ptr<FastBatch>& batch) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!open || tsfn.NonBlockingCall(batch.get()) != napi_ok) return false;
    batch.release();  // the function owns it now (CallJs frees it)
    return true;
  }

  static void CloseOnTeardown(void* delivery) {
    auto* d = static_cast<Delivery*>(delivery);
    std::lock_guard<std::mutex> lock(d->mutex);
    d->open = false;  // Node finalizes the function itself at teardown
  }
};

void Delivery::CallJs(Napi::Env env, Napi::Function callback, Delivery*, FastBatch* raw) {
  std::unique_ptr<FastBatch> batch(raw);
  if (env == nullptr) return;  // teardown: the batch's destructor closes handed-back fds
  Napi::Object out = Napi::Object::New(env);
  out.Set("accepted", Napi::Number::New(env, batch->accepted));
  out.Set("rejected", Napi::Number::New(env, batch->rejected));
  out.Set("stopped", Napi::Boolean::New(env, batch->stopped));
  Napi::Object summed = Napi::Object::New(env);
  summed.Set("count", Napi::Number::New(env, batch->summed.count));
  summed.Set("bytesIn", Napi::Number::New(env, static_cast<double>(batch->summed.bytes_in)));
  summed.Set("bytesOut", Napi::Number::New(env, static_cast<double>(batch->summed.bytes_out)));
  summed.Set("durationMs", Napi::Number::New(env, static_cast<double>(batch->summed.duration_ms)));
  summed.Set("copied", Napi::Number::New(env, batch->summed.copied));
  out.Set("summed", summed);
  Napi::Array closed = Napi::Array::New(env, batch->closed.size());
  for (size_t i = 0; i < batch->closed.size(); i++) {
    const ClosedRecord& r = batch->closed[i];
    Napi::Object o = Napi::Object::New(env);
    if (!r.client.empty()) o.Set("client", Napi::String::New(env, r.client));
    o.Set("bytesIn", Napi::Number::New(env, static_cast<double>(r.bytes_in)));
    o.Set("bytesOut", Napi::Number::New(env, static_cast<double>(r.bytes_out)));
    o.Set("durationMs", Napi::Number::New(env, static_cast<double>(r.duration_ms)));
    o.Set("closedBy", Napi::String::New(env, CloseCauseName(r.closed_by)));
    o.Set("copied", Napi::Boolean::New(env, r.copied));
    if (r.error_end >= 0) {
      o.Set("errorSide", Napi::String::New(env, r.error_end == kDownstreamEnd ? "downstream" : "upstream"));
      o.Set("errno", Napi::Number::New(env, r.error_errno));
    }
    closed.Set(i, o);
  }
  out.Set("closed", closed);
  Napi::Array fallbacks = Napi::Array::New(env, batch->fallbacks.size());
  for (size_t i = 0; i < batch->fallbacks.size(); i++) {
    FallbackRecord& r = batch->fallbacks[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("head", Napi::Buffer<char>::Copy(env, r.head.data(), r.head.size()));
    if (r.resumed) {
      Napi::Object resumed = Napi::Object::New(env);
      resumed.Set("conn", Napi::Number::New(env, static_cast<double>(r.conn)));
      if (!r.client_address.empty()) {
        resumed.Set("clientAddress", Napi::String::New(env, r.client_address));
        resumed.Set("clientPort", Napi::Number::New(env, r.client_port));
      }
      resumed.Set("served", Napi::Number::New(env, r.served));
      o.Set("resumed", resumed);
    }
    o.Set("fd", Napi::Number::New(env, std::exchange(r.fd, -1)));  // JS owns it from here
    fallbacks.Set(i, o);
  }
  out.Set("fallbacks", fallbacks);
  Napi::Array not_proxied = Napi::Array::New(env, batch->not_proxied.size());
  for (size_t i = 0; i < batch->not_proxied.size(); i++) {
    const NotProxiedRecord& r = batch->not_proxied[i];
    Napi::Object o = Napi::Object::New(env);
    if (!r.client.empty()) o.Set("client", Napi::String::New(env, r.client));
    o.Set("stage", Napi::String::New(env, r.stage == NotProxiedRecord::Stage::kTls ? "tls" : "cluster"));
    if (!r.code.empty()) o.Set("code", Napi::String::New(env, r.code));
    if (r.error_errno != 0) o.Set("errno", Napi::Number::New(env, r.error_errno));
    o.Set("message", Napi::String::New(env, r.message));
    o.Set("durationMs", Napi::Number::New(env, static_cast<double>(r.duration_ms)));
    not_proxied.Set(i, o);
  }
  out.Set("notProxied", not_proxied);
  Napi::Array requests = Napi::Array::New(env, batch->requests.size());
  for (size_t i = 0; i < batch->requests.size(); i++) {
    const HttpRequestRecord& r = batch->requests[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("conn", Napi::Number::New(env, static_cast<double>(r.conn)));
    o.Set("method", Napi::String::New(env, r.method));
    o.Set("host", Napi::String::New(env, r.host));
    o.Set("path", Napi::String::New(env, r.path));
    o.Set("route", Napi::String::New(env, r.route));
    o.Set("status", Napi::Number::New(env, r.status));
    o.Set("bytesIn", Napi::Number::New(env, static_cast<double>(r.bytes_in)));
    o.Set("bytesOut", Napi::Number::New(env, static_cast<double>(r.bytes_out)));
    o.Set("durationMs", Napi::Number::New(env, r.duration_ms));
    if (!r.client.empty()) o.Set("client", Napi::String::New(env, r.client));
    if (!r.error.empty()) o.Set("error", Napi::String::New(env, r.error));
    requests.Set(i, o);
  }
  out.Set("requests", requests);
  Napi::Array routes = Napi::Array::New(env, batch->routes.size());
  for (size_t i = 0; i < batch->routes.size(); i++) {
    const RouteAggregate& a = batch->routes[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("route", Napi::String::New(env, a.route));
    Napi::Array by_class = Napi::Array::New(env, 10);
    for (uint32_t c = 0; c < 10; c++) by_class.Set(c, Napi::Number::New(env, a.by_class[c]));
    o.Set("byClass", by_class);
    Napi::Array per_bucket = Napi::Array::New(env, a.per_bucket.size());
    for (size_t b = 0; b < a.per_bucket.size(); b++) per_bucket.Set(b, Napi::Number::New(env, a.per_bucket[b]));
    o.Set("perBucket", per_bucket);
    o.Set("sumSeconds", Napi::Number::New(env, a.sum_seconds));
    o.Set("count", Napi::Number::New(env, a.count));
    routes.Set(i, o);
  }
  out.Set("routes", routes);
  // An exception from the callback propagates as uncaught: it is the caller's bug.
  callback.Call({out});
}

}  // namespace

struct FastHandle {
  std::shared_ptr<FastListener> listener;
  std::vector<std::pair<Reactor*, std::shared_ptr<Acceptor>>> acceptors;
  std::shared_ptr<Delivery> delivery;
  napi_env env = nullptr;
  bool stopping = false;

  void Close() {
    {
      std::lock_guard<std::mutex> lock(delivery->mutex);
      if (!delivery->open) return;
      delivery->open = false;
      delivery->tsfn.Release();
    }
    napi_remove_env_cleanup_hook(env, Delivery::CloseOnTeardown, delivery.get());
  }
};

FastPathRegistry::~FastPathRegistry() {
  // Environment teardown: the cleanup hooks have closed every delivery already.
  handles.clear();
}

namespace {

FastPathRegistry& Registry(Napi::Env env) {
  AddonState& state = StateOf(env);
  if (!state.fastpath) state.fastpath = std::make_unique<FastPathRegistry>();
  return *state.fastpath;
}

FastHandle& HandleArgument(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber()) ThrowArgumentError(info.Env(), "fast path: the handle must be a number");
  auto& handles = Registry(info.Env()).handles;
  auto it = handles.find(info[0].As<Napi::Number>().Uint32Value());
  if (it == handles.end()) ThrowArgumentError(info.Env(), "fast path: unknown handle");
  return *it->second;
}

int64_t MsOption(Napi::Object o, const char* key, int64_t fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) ThrowArgumentError(o.Env(), (std::string("fastListen: ") + key + " must be a number").c_str());
  double d = v.As<Napi::Number>().DoubleValue();
  return d > 0 && std::isfinite(d) ? static_cast<int64_t>(d) : 0;
}

FastEndpoint EndpointOption(Napi::Env env, Napi::Value value) {
  if (!value.IsObject()) ThrowArgumentError(env, "fastListen: endpoint must be an object");
  Napi::Object o = value.As<Napi::Object>();
  std::string family = o.Get("family").ToString().Utf8Value();
  FastEndpoint e;
  if (family == "ipv4" || family == "ipv6") {
    std::string address = o.Get("address").ToString().Utf8Value();
    uint32_t port = o.Get("port").ToNumber().Uint32Value();
    e.tcp = true;
    if (family == "ipv4") {
      auto* a = reinterpret_cast<sockaddr_in*>(&e.address);
      a->sin_family = AF_INET;
      a->sin_port = htons(static_cast<uint16_t>(port));
      if (inet_pton(AF_INET, address.c_str(), &a->sin_addr) != 1) ThrowArgumentError(env, "fastListen: bad IPv4 address");
      e.length = sizeof(sockaddr_in);
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&e.address);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(static_cast<uint16_t>(port));
      if (inet_pton(AF_INET6, address.c_str(), &a->sin6_addr) != 1) ThrowArgumentError(env, "fastListen: bad IPv6 address");
      e.length = sizeof(sockaddr_in6);
    }
  } else if (family == "unix") {
    std::string path = o.Get("path").ToString().Utf8Value();
    auto* a = reinterpret_cast<sockaddr_un*>(&e.address);
    if (path.empty() || path.size() >= sizeof(a->sun_path)) ThrowArgumentError(env, "fastListen: Unix socket path is empty or too long");
    a->sun_family = AF_UNIX;
    std::memcpy(a->sun_path, path.data(), path.size());
    e.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  } else if (family == "vsock") {
    auto* a = reinterpret_cast<sockaddr_vm*>(&e.address);
    a->svm_family = AF_VSOCK;
    a->svm_cid = o.Get("cid").ToNumber().Uint32Value();
    a->svm_port = o.Get("port").ToNumber().Uint32Value();
    e.length = sizeof(sockaddr_vm);
  } else {
    ThrowArgumentError(env, "fastListen: endpoint family must be ipv4, ipv6, unix or vsock");
  }
  return e;
}

std::string StringOption(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsBuffer()) {
    Napi::Buffer<char> b = v.As<Napi::Buffer<char>>();
    return std::string(b.Data(), b.Length());
  }
  return v.IsUndefined() ? std::string() : v.ToString().Utf8Value();
}

std::vector<std::string> StringsOption(Napi::Env env, Napi::Value v, const char* what) {
  std::vector<std::string> out;
  if (v.IsUndefined()) return out;
  if (!v.IsArray()) ThrowArgumentError(env, (std::string("fastListen: ") + what + " must be an array").c_str());
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(a.Get(i).ToString().Utf8Value());
  return out;
}

int ClusterIndex(Napi::Env env, Napi::Value v, size_t clusters) {
  uint32_t i = v.ToNumber().Uint32Value();
  if (i >= clusters) ThrowArgumentError(env, "fastListen: http route cluster index out of range");
  return static_cast<int>(i);
}

// The `http` option: routes (already proven inside the glob subset by JS), endpoints, limits and
// the texts of the answers the engine writes itself.
std::shared_ptr<const HttpConfig> HttpOption(Napi::Env env, Napi::Value value) {
  if (!value.IsObject()) ThrowArgumentError(env, "fastListen: http must be an object");
  Napi::Object o = value.As<Napi::Object>();
  auto config = std::make_shared<HttpConfig>();
  Napi::Value endpoints = o.Get("endpoints");
  if (!endpoints.IsArray()) ThrowArgumentError(env, "fastListen: http.endpoints must be an array");
  Napi::Array ea = endpoints.As<Napi::Array>();
  for (uint32_t i = 0; i < ea.Length(); i++) config->endpoints.push_back(EndpointOption(env, ea.Get(i)));
  Napi::Value routes = o.Get("routes");
  if (!routes.IsArray()) ThrowArgumentError(env, "fastListen: http.routes must be an array");
  Napi::Array ra = routes.As<Napi::Array>();
  for (uint32_t i = 0; i < ra.Length(); i++) {
    Napi::Object r = ra.Get(i).As<Napi::Object>();
    NativeRoute route;
    route.name = r.Get("name").ToString().Utf8Value();
    route.cluster = ClusterIndex(env, r.Get("cluster"), config->endpoints.size());
    for (const std::string& g : StringsOption(env, r.Get("hosts"), "http route hosts")) {
      if (!GlobSubsetProblem(g, true).empty()) ThrowArgumentError(env, "fastListen: a host glob outside the native subset");
      route.hosts.emplace_back(g, true);
    }
    for (const std::string& g : StringsOption(env, r.Get("paths"), "http route paths")) {
      if (!GlobSubsetProblem(g, false).empty()) ThrowArgumentError(env, "fastListen: a path glob outside the native subset");
      route.paths.emplace_back(g, false);
    }
    config->routes.routes.push_back(std::move(route));
  }
  Napi::Value fallback = o.Get("defaultCluster");
  if (!fallback.IsUndefined()) {
    config->routes.has_default = true;
    config->routes.default_cluster = ClusterIndex(env, fallback, config->endpoints.size());
  }
  config->local_paths = StringsOption(env, o.Get("localPaths"), "http.localPaths");
  config->max_header_bytes = static_cast<size_t>(MsOption(o, "maxHeaderBytes", 16384));
  config->max_headers = static_cast<size_t>(MsOption(o, "maxHeaders", 100));
  config->head_timeout_ms = MsOption(o, "headTimeoutMs", 15000);
  config->idle_timeout_ms = MsOption(o, "idleTimeoutMs", 0);
  config->keep_alive_timeout_ms = MsOption(o, "keepAliveTimeoutMs", 5000);
  config->upstream_idle_ms = MsOption(o, "upstreamIdleMs", 4000);
  config->timeout_answer = StringOption(o, "timeoutAnswer");
  config->bad_request_answer = StringOption(o, "badRequestAnswer");
  config->request_records = o.Get("requestRecords").ToBoolean().Value();
  Napi::Value buckets = o.Get("bucketsSeconds");
  if (buckets.IsArray()) {
    Napi::Array ba = buckets.As<Napi::Array>();
    for (uint32_t i = 0; i < ba.Length(); i++) config->buckets_seconds.push_back(ba.Get(i).ToNumber().DoubleValue());
  }
  config->proto = StringOption(o, "proto");
  Napi::Value reasons = o.Get("reasons");
  if (reasons.IsObject()) {
    config->reasons.resize(600);
    Napi::Object ro = reasons.As<Napi::Object>();
    Napi::Array keys = ro.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); i++) {
      uint32_t code = keys.Get(i).ToNumber().Uint32Value();
      if (code < 600) config->reasons[code] = ro.Get(keys.Get(i)).ToString().Utf8Value();
    }
  }
  return config;
}

// fastListen({listenFd, endpoint, expectProxy, sendProxy, maxConnections, idleTimeoutMs,
// connectTimeoutMs, headerTimeoutMs}, onBatch) → handle. The listening fd is the listener's from
// the call on (closed on failure too), except after a TypeError.
Napi::Value FastListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject() || !info[1].IsFunction()) ThrowArgumentError(env, "fastListen(options, onBatch)");
  Napi::Object o = info[0].As<Napi::Object>();
  FastListenerConfig config;
  Napi::Value fd = o.Get("listenFd");
  if (!fd.IsNumber() || fd.As<Napi::Number>().Int32Value() < 0) {
    ThrowArgumentError(env, "fastListen: listenFd must be a non-negative integer");
  }
  if (!o.Get("http").IsUndefined()) config.http = HttpOption(env, o.Get("http"));
  else config.endpoint = EndpointOption(env, o.Get("endpoint"));
  config.expect_proxy = o.Get("expectProxy").ToBoolean().Value();
  config.send_proxy = o.Get("sendProxy").ToBoolean().Value();
  config.max_connections = MsOption(o, "maxConnections", 0);
  config.idle_timeout_ms = MsOption(o, "idleTimeoutMs", 0);
  config.connect_timeout_ms = MsOption(o, "connectTimeoutMs", 5000);
  config.header_timeout_ms = MsOption(o, "headerTimeoutMs", 5000);
  config.records = o.Get("records").IsUndefined() ? true : o.Get("records").ToBoolean().Value();
  config.tls = o.Get("tls").ToBoolean().Value();
  config.handshake_timeout_ms = MsOption(o, "handshakeTimeoutMs", 15000);
  config.listen_fd = fd.As<Napi::Number>().Int32Value();

  PumpEngine& engine = PumpEngineOf(env);
  try {
    engine.EnsureStarted(env);
  } catch (...) {
    CloseQuietly(config.listen_fd);
    throw;
  }
  std::vector<Reactor*> reactors = engine.reactors();

  auto handle = std::make_unique<FastHandle>();
  handle->env = env;
  handle->delivery = std::make_shared<Delivery>();
  handle->delivery->tsfn = Delivery::Tsfn::New(env, info[1].As<Napi::Function>(), "enclaver-fastpath-batch", 0, 1, handle->delivery.get());
  // Registered after the function's own teardown, so it runs first: no post after that.
  napi_add_env_cleanup_hook(env, Delivery::CloseOnTeardown, handle->delivery.get());
  std::shared_ptr<Delivery> delivery = handle->delivery;
  handle->listener = std::make_shared<FastListener>(std::move(config), reactors.size(),
                                                    [delivery](std::unique_ptr<FastBatch>& batch) { return delivery->Post(batch); });
  for (Reactor* reactor : reactors) {
    auto acceptor = std::make_shared<Acceptor>(handle->listener, *reactor);
    handle->acceptors.emplace_back(reactor, acceptor);
    reactor->Execute([acceptor](Reactor&, PumpContext& ctx) { acceptor->Start(ctx); });
  }
  FastPathRegistry& registry = Registry(env);
  uint32_t id = registry.next_handle++;
  registry.handles.emplace(id, std::move(handle));
  return Napi::Number::New(env, id);
}

// Runs `fn` on every pump thread for each of this listener's acceptors.
template <typename Fn>
void ForEachAcceptor(FastHandle& handle, Fn fn) {
  for (auto& entry : handle.acceptors) {
    std::shared_ptr<Acceptor> acceptor = entry.second;
    entry.first->Execute([acceptor, fn](Reactor&, PumpContext& ctx) { fn(*acceptor, ctx); });
  }
}

// fastStop(handle): stop accepting; each pump thread then sends a batch with `stopped`.
Napi::Value FastStop(const Napi::CallbackInfo& info) {
  FastHandle& handle = HandleArgument(info);
  if (!handle.stopping) {
    handle.stopping = true;
    ForEachAcceptor(handle, [](Acceptor& a, PumpContext& ctx) { a.StopAccepting(ctx); });
  }
  return info.Env().Undefined();
}

// fastAbortAll(handle): every connection of the listener ends now (reported as closed, aborted).
Napi::Value FastAbortAll(const Napi::CallbackInfo& info) {
  FastHandle& handle = HandleArgument(info);
  ForEachAcceptor(handle, [](Acceptor& a, PumpContext& ctx) { a.AbortAll(ctx); });
  return info.Env().Undefined();
}

// fastRelease(handle): a connection handed back to JS has ended (max_connections accounting).
Napi::Value FastRelease(const Napi::CallbackInfo& info) {
  HandleArgument(info).listener->Release();
  return info.Env().Undefined();
}

// fastSetTls(handle, {certificate, key, cipherList, cipherSuites}): the identity of handshakes
// that start from now on. Throws (never quoting the key) when OpenSSL does not accept it; the
// previous identity then stays.
Napi::Value FastSetTls(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FastHandle& handle = HandleArgument(info);
  if (!info[1].IsObject()) ThrowArgumentError(env, "fastSetTls(handle, identity)");
  Napi::Object o = info[1].As<Napi::Object>();
  TlsContext::Settings settings;
  settings.certificate_pem = o.Get("certificate").ToString().Utf8Value();
  settings.key_pem = o.Get("key").ToString().Utf8Value();
  if (o.Has("cipherList")) settings.cipher_list = o.Get("cipherList").ToString().Utf8Value();
  if (o.Has("cipherSuites")) settings.cipher_suites = o.Get("cipherSuites").ToString().Utf8Value();
  std::string error;
  std::shared_ptr<TlsContext> context = TlsContext::Create(settings, &error);
  OPENSSL_cleanse(settings.key_pem.data(), settings.key_pem.size());  // Create wipes it too; not on every early exit
  if (!context) throw Napi::Error::New(env, error);
  handle.listener->SetTlsContext(std::move(context));
  return env.Undefined();
}

// fastClose(handle): after the stop and the last connection; no batch is delivered after it.
Napi::Value FastClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FastHandle& handle = HandleArgument(info);
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  ForEachAcceptor(handle, [](Acceptor& a, PumpContext& ctx) { a.Remove(ctx); });
  handle.Close();
  Registry(env).handles.erase(id);
  return env.Undefined();
}

// A bound, listening, non-blocking, close-on-exec socket; `fd` is closed on failure.
int ListenOn(Napi::Env env, int fd, const sockaddr* address, socklen_t length, int backlog, const char* what) {
  if (fd < 0) ThrowSyscallError(env, "socket", errno);
  if (bind(fd, address, length) < 0 || listen(fd, backlog) < 0) {
    int err = errno;
    close(fd);
    ThrowSyscallError(env, what, err);
  }
  return fd;
}

// fastBindTcp(host, port, backlog) → {fd, port}: host is an IPv4 or IPv6 literal.
Napi::Value FastBindTcp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string host = info[0].ToString().Utf8Value();
  uint16_t port = static_cast<uint16_t>(info[1].ToNumber().Uint32Value());
  int backlog = info[2].ToNumber().Int32Value();
  sockaddr_storage address{};
  socklen_t length;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    length = sizeof(sockaddr_in6);
  } else {
    ThrowArgumentError(env, "fastBindTcp: host must be an IP address");
  }
  int fd = socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    int one = 1;  // as Node does for TCP servers: a restart may bind while old connections linger
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  }
  fd = ListenOn(env, fd, reinterpret_cast<sockaddr*>(&address), length, backlog, "bind/listen");
  sockaddr_storage bound{};
  socklen_t bound_length = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_length);
  uint16_t bound_port = bound.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
                                                   : ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd));
  out.Set("port", Napi::Number::New(env, bound_port));
  return out;
}

// fastBindUnix(path, backlog) → fd.
Napi::Value FastBindUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].ToString().Utf8Value();
  int backlog = info[1].ToNumber().Int32Value();
  sockaddr_un address{};
  if (path.empty() || path.size() >= sizeof(address.sun_path)) ThrowArgumentError(env, "fastBindUnix: path is empty or too long");
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  fd = ListenOn(env, fd, reinterpret_cast<sockaddr*>(&address), sizeof(address), backlog, "bind/listen");
  return Napi::Number::New(env, fd);
}

// httpGlobProblem(pattern, host) → '' or why the native matcher cannot take it (glob.h).
Napi::Value HttpGlobProblem(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), GlobSubsetProblem(info[0].ToString().Utf8Value(), info[1].ToBoolean().Value()));
}

// httpGlobMatch(pattern, host, subject) → whether the native matcher matches (for the property
// test that holds it equal to minimatch).
Napi::Value HttpGlobMatch(const Napi::CallbackInfo& info) {
  Glob glob(info[0].ToString().Utf8Value(), info[1].ToBoolean().Value());
  return Napi::Boolean::New(info.Env(), glob.Match(info[2].ToString().Utf8Value()));
}

}  // namespace

void RegisterFastPathFunctions(Napi::Env env, Napi::Object exports) {
  ExportFunctions(env, exports, {
      {"fastBindTcp", FastBindTcp},
      {"fastBindUnix", FastBindUnix},
      {"fastListen", FastListen},
      {"fastStop", FastStop},
      {"fastAbortAll", FastAbortAll},
      {"fastRelease", FastRelease},
      {"fastSetTls", FastSetTls},
      {"fastClose", FastClose},
      {"httpGlobProblem", HttpGlobProblem},
      {"httpGlobMatch", HttpGlobMatch},
  });
}

}  // namespace enclaver
