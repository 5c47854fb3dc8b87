#include "pump/pump_binding.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <string>

#include "addon_state.h"
#include "exports.h"
#include "fd.h"
#include "syscall_error.h"

namespace enclaver {

namespace {

const char* EndName(int end) {
  return end == kDownstreamEnd ? "downstream" : "upstream";
}

size_t SizeOption(Napi::Object options, const char* key, size_t fallback, size_t min, size_t max) {
  Napi::Value v = options.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) ThrowArgumentError(options.Env(), (std::string("pumpConfigure: ") + key + " must be a number").c_str());
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(min)) || d > static_cast<double>(max) || std::floor(d) != d) {
    ThrowArgumentError(options.Env(), (std::string("pumpConfigure: ") + key + " is out of range").c_str());
  }
  return static_cast<size_t>(d);
}

std::string HeadOption(Napi::Object options, const char* key) {
  Napi::Value v = options.Get(key);
  if (v.IsUndefined() || v.IsNull()) return std::string();
  if (!v.IsBuffer()) ThrowArgumentError(options.Env(), (std::string("pumpStart: ") + key + " must be a Buffer").c_str());
  Napi::Buffer<char> b = v.As<Napi::Buffer<char>>();
  return std::string(b.Data(), b.Length());
}

}  // namespace

PumpEngine::PumpEngine(Napi::Env env) : env_(env) {}

PumpEngine::~PumpEngine() {
  StopReactors();
}

void PumpEngine::StopReactors() {
  stopped_ = true;
  reactors_.clear();  // joins every thread: no completion is posted after this
}

void PumpEngine::StopOnTeardown(void* engine) {
  static_cast<PumpEngine*>(engine)->StopReactors();
}

// pumpConfigure({threads, pipeSize, pipeBudgetPages, maxIdlePipes}); only before the first pumpStart.
Napi::Value PumpEngine::Configure(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) ThrowArgumentError(env, "pumpConfigure(options): options must be an object");
  if (started_) throw Napi::Error::New(env, "pumpConfigure: the pump is already running; configure it before the first pumpStart");
  Napi::Object o = info[0].As<Napi::Object>();
  thread_count_ = SizeOption(o, "threads", thread_count_, 1, 64);
  settings_.pipe_size = SizeOption(o, "pipeSize", settings_.pipe_size, 4096, 64 << 20);
  settings_.pipe_budget_pages = SizeOption(o, "pipeBudgetPages", settings_.pipe_budget_pages, 0, SIZE_MAX >> 16);
  settings_.max_idle_pipes = SizeOption(o, "maxIdlePipes", settings_.max_idle_pipes, 0, 1 << 20);
  return env.Undefined();
}

void PumpEngine::EnsureStarted(Napi::Env env) {
  if (stopped_) throw Napi::Error::New(env, "the pump has been shut down");
  if (started_) return;
  // Threads first: if one cannot start, nothing else has been set up and a later call retries.
  // They receive no connection (so post nothing) before this function returns.
  ReactorSettings per_thread = settings_;
  per_thread.pipe_budget_pages = settings_.pipe_budget_pages / thread_count_;  // each thread its share
  std::vector<std::unique_ptr<Reactor>> reactors;
  for (size_t i = 0; i < thread_count_; i++) {
    auto reactor = std::make_unique<Reactor>(per_thread, &counters_, [this](uint64_t id, const PumpOutcome& outcome) {
      // Reactor thread. A closing function (environment teardown) refuses the call; then
      // nobody is left to tell, and the message is freed here.
      auto* completion = new PumpCompletion{id, outcome};
      if (tsfn_.NonBlockingCall(completion) != napi_ok) delete completion;
    });
    int err = reactor->Start();
    if (err != 0) ThrowSyscallError(env, "pump thread start", err);  // `reactors` joins the started ones
    reactors.push_back(std::move(reactor));
  }
  tsfn_ = Tsfn::New(env, "enclaver-pump-completion", 0, 1, this);
  tsfn_.Unref(env);  // only active connections keep the process alive
  // Registered after the thread-safe function, so it runs before Node tears that down: the
  // pump threads are joined while they can still post.
  napi_add_env_cleanup_hook(env, StopOnTeardown, this);
  reactors_ = std::move(reactors);
  started_ = true;
}

// pumpStart({downstreamFd, upstreamFd, headUp?, headDown?, idleTimeoutMs?, splice?}, callback) → id.
// Malformed arguments throw a TypeError and leave the fds alone. Past validation the pump owns
// both fds, also when it then fails (and throws the syscall error).
Napi::Value PumpEngine::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) ThrowArgumentError(env, "pumpStart(options, callback): options must be an object");
  if (!info[1].IsFunction()) ThrowArgumentError(env, "pumpStart(options, callback): callback must be a function");
  Napi::Object o = info[0].As<Napi::Object>();
  auto fd_of = [](Napi::Value v) -> int {
    if (!v.IsNumber()) return -1;
    double d = v.As<Napi::Number>().DoubleValue();
    return d >= 0 && d <= 0x7fffffff && std::floor(d) == d ? static_cast<int>(d) : -1;
  };
  Connection::Options options;
  options.downstream_fd = fd_of(o.Get("downstreamFd"));
  options.upstream_fd = fd_of(o.Get("upstreamFd"));
  if (options.downstream_fd < 0 || options.upstream_fd < 0) {
    ThrowArgumentError(env, "pumpStart: downstreamFd and upstreamFd must be non-negative integers");
  }
  if (options.downstream_fd == options.upstream_fd) ThrowArgumentError(env, "pumpStart: the two fds must differ");
  options.head_up = HeadOption(o, "headUp");
  options.head_down = HeadOption(o, "headDown");
  Napi::Value idle = o.Get("idleTimeoutMs");
  if (!idle.IsUndefined()) {
    if (!idle.IsNumber()) ThrowArgumentError(env, "pumpStart: idleTimeoutMs must be a number");
    double ms = idle.As<Napi::Number>().DoubleValue();
    options.idle_timeout_ms = ms > 0 ? static_cast<int64_t>(ms) : 0;
  }
  Napi::Value splice = o.Get("splice");
  options.splice = splice.IsUndefined() ? true : splice.ToBoolean().Value();
  try {
    // The pump depends on non-blocking fds (SPLICE_F_NONBLOCK covers only the pipe side).
    for (int fd : {options.downstream_fd, options.upstream_fd}) {
      int flags = fcntl(fd, F_GETFL);
      if (flags < 0) ThrowSyscallError(env, "fcntl(F_GETFL)", errno);
      if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) ThrowSyscallError(env, "fcntl(F_SETFL)", errno);
    }
    EnsureStarted(env);
  } catch (...) {
    CloseQuietly(options.downstream_fd);
    CloseQuietly(options.upstream_fd);
    throw;
  }
  uint64_t id = next_id_++;
  options.id = id;
  callbacks_.emplace(id, Napi::Persistent(info[1].As<Napi::Function>()));
  if (active_++ == 0) tsfn_.Ref(env);
  reactors_[id % reactors_.size()]->Add(std::make_unique<Connection>(std::move(options)));
  return Napi::Number::New(env, static_cast<double>(id));
}

// pumpAbort(id): tears the connection down; its callback still runs once (closedBy "aborted").
Napi::Value PumpEngine::Abort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) ThrowArgumentError(env, "pumpAbort(id): id must be a number");
  uint64_t id = static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue());
  bool known = callbacks_.count(id) > 0;
  if (known && !reactors_.empty()) reactors_[id % reactors_.size()]->Abort(id);
  return Napi::Boolean::New(env, known);
}

Napi::Value PumpEngine::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t pages = 0;
  size_t idle = 0;
  for (const auto& r : reactors_) {
    pages += r->pipe_pages();
    idle += r->idle_pipes();
  }
  Napi::Object s = Napi::Object::New(env);
  s.Set("running", Napi::Boolean::New(env, started_ && !stopped_));
  s.Set("threads", Napi::Number::New(env, static_cast<double>(thread_count_)));
  s.Set("active", Napi::Number::New(env, static_cast<double>(active_)));
  s.Set("pipeSizeWanted", Napi::Number::New(env, static_cast<double>(settings_.pipe_size)));
  s.Set("pipeCapacity", Napi::Number::New(env, static_cast<double>(counters_.pipe_capacity.load())));
  s.Set("pipeBudgetPages", Napi::Number::New(env, static_cast<double>(settings_.pipe_budget_pages)));
  s.Set("pipePages", Napi::Number::New(env, static_cast<double>(pages)));
  s.Set("idlePipes", Napi::Number::New(env, static_cast<double>(idle)));
  s.Set("spliceRefused", Napi::Number::New(env, static_cast<double>(counters_.splice_refused.load())));
  s.Set("budgetCopies", Napi::Number::New(env, static_cast<double>(counters_.budget_copies.load())));
  return s;
}

void PumpEngine::CallJs(Napi::Env env, Napi::Function, PumpEngine* engine, PumpCompletion* completion) {
  std::unique_ptr<PumpCompletion> owned(completion);
  if (env == nullptr || engine == nullptr) return;  // teardown
  engine->Deliver(env, owned.get());
}

void PumpEngine::Deliver(Napi::Env env, PumpCompletion* completion) {
  auto it = callbacks_.find(completion->id);
  if (it == callbacks_.end()) return;
  Napi::FunctionReference callback = std::move(it->second);
  callbacks_.erase(it);
  if (--active_ == 0) tsfn_.Unref(env);
  const PumpOutcome& o = completion->outcome;
  Napi::Object result = Napi::Object::New(env);
  result.Set("bytesUp", Napi::Number::New(env, static_cast<double>(o.bytes_up)));
  result.Set("bytesDown", Napi::Number::New(env, static_cast<double>(o.bytes_down)));
  result.Set("closedBy", Napi::String::New(env, CloseCauseName(o.closed_by)));
  if (o.error_end >= 0) {
    result.Set("errorSide", Napi::String::New(env, EndName(o.error_end)));
    result.Set("errno", Napi::Number::New(env, o.error_errno));
  }
  result.Set("copied", Napi::Boolean::New(env, o.copied));
  result.Set("durationMs", Napi::Number::New(env, static_cast<double>(o.duration_ms)));
  // Exceptions from the callback propagate as uncaught: they are the caller's bug, not the pump's.
  callback.Call({result});
}

PumpEngine& PumpEngineOf(Napi::Env env) {
  AddonState& state = StateOf(env);
  if (!state.pump) state.pump = std::make_unique<PumpEngine>(env);
  return *state.pump;
}

namespace {

PumpEngine& Engine(Napi::Env env) {
  return PumpEngineOf(env);
}

// spliceProbe() → {supported, errno?}: splices one byte socket → pipe → socket, the exact path
// the pump uses, so "supported" means this kernel will splice our sockets.
Napi::Value SpliceProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sp[2] = {-1, -1};
  int pp[2] = {-1, -1};
  int err = 0;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) < 0) err = errno;
  if (err == 0 && pipe2(pp, O_NONBLOCK | O_CLOEXEC) < 0) err = errno;
  if (err == 0) {
    char byte = 'x';
    if (write(sp[0], &byte, 1) != 1) err = errno;
  }
  if (err == 0 && splice(sp[1], nullptr, pp[1], nullptr, 1, SPLICE_F_NONBLOCK) != 1) err = errno;
  if (err == 0 && splice(pp[0], nullptr, sp[1], nullptr, 1, SPLICE_F_NONBLOCK) != 1) err = errno;
  for (int fd : {sp[0], sp[1], pp[0], pp[1]}) CloseQuietly(fd);
  Napi::Object out = Napi::Object::New(env);
  out.Set("supported", Napi::Boolean::New(env, err == 0));
  if (err != 0) out.Set("errno", Napi::Number::New(env, err));
  return out;
}

}  // namespace

const char* CloseCauseName(CloseCause cause) {
  switch (cause) {
    case CloseCause::kDownstream: return "downstream";
    case CloseCause::kUpstream: return "upstream";
    case CloseCause::kAborted: return "aborted";
    case CloseCause::kIdleTimeout: return "idle_timeout";
  }
  return "aborted";
}

void RegisterPumpFunctions(Napi::Env env, Napi::Object exports) {
  ExportFunctions(env, exports, {
      {"pumpConfigure", [](const Napi::CallbackInfo& info) { return Engine(info.Env()).Configure(info); }},
      {"pumpStart", [](const Napi::CallbackInfo& info) { return Engine(info.Env()).Start(info); }},
      {"pumpAbort", [](const Napi::CallbackInfo& info) { return Engine(info.Env()).Abort(info); }},
      {"pumpStats", [](const Napi::CallbackInfo& info) { return Engine(info.Env()).Stats(info); }},
      {"spliceProbe", SpliceProbe},
  });
}

}  // namespace enclaver
