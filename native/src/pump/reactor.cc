#include "pump/reactor.h"

#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace enclaver {

namespace {

constexpr int kMaxEvents = 256;
constexpr int64_t kIdleCheckIntervalMs = 1000;

int64_t NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

Reactor::Reactor(const ReactorSettings& settings, PumpCounters* counters, CompletionFn on_complete)
    : settings_(settings),
      counters_(counters),
      on_complete_(std::move(on_complete)),
      pipes_(settings.pipe_size, settings.pipe_budget_pages, settings.max_idle_pipes),
      scratch_(settings.pipe_size) {}

Reactor::~Reactor() {
  if (thread_.joinable()) {
    stopping_ = true;
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  CloseAll();
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

int Reactor::Start() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return errno;
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return errno;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;  // the one registration that is neither a connection's key nor a task's tag
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) < 0) return errno;
  // Signals belong to Node's main thread; the pump thread must never be picked to run a handler.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  try {
    thread_ = std::thread([this] { Run(); });
  } catch (const std::system_error& e) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return e.code().value() != 0 ? e.code().value() : EAGAIN;
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return 0;
}

void Reactor::Add(std::unique_ptr<Connection> connection) {
  Command c;
  c.id = connection->id();
  c.connection = std::move(connection);
  Post(std::move(c));
}

void Reactor::Abort(uint64_t id) {
  Command c;
  c.id = id;
  Post(std::move(c));
}

void Reactor::Execute(std::function<void(Reactor&, PumpContext&)> fn) {
  Command c;
  c.fn = std::move(fn);
  Post(std::move(c));
}

void Reactor::Hook(ReactorTask* task) {
  hooked_.push_back(task);
}

void Reactor::Unhook(ReactorTask* task) {
  for (auto it = hooked_.begin(); it != hooked_.end(); ++it) {
    if (*it == task) {
      hooked_.erase(it);
      return;
    }
  }
}

void Reactor::Adopt(std::unique_ptr<Connection> connection, PumpContext& ctx) {
  Register(std::move(connection), ctx);
}

bool Reactor::AbortNow(uint64_t id, PumpContext& ctx) {
  auto it = connections_.find(id);
  if (it == connections_.end() || it->second->ended()) return false;
  Connection* c = it->second.get();
  c->End(CloseCause::kAborted, ctx);
  Finish(c, ctx);
  return true;
}

void Reactor::Post(Command command) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    was_empty = commands_.empty();
    commands_.push_back(std::move(command));
  }
  // One wake-up per batch of commands: the thread drains the whole queue when it wakes.
  if (was_empty) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
}

PumpContext Reactor::Context() {
  return PumpContext{pipes_, *counters_, epoll_fd_, scratch_.data(), scratch_.size(), NowMs()};
}

void Reactor::Run() {
  epoll_event events[kMaxEvents];
  PumpContext ctx = Context();
  int64_t next_idle_check = 0;
  while (!stopping_.load(std::memory_order_relaxed)) {
    bool ticking = idle_watched_ > 0 || !hooked_.empty();
    int timeout = holding_ ? kHoldWakeMs : ticking ? static_cast<int>(kIdleCheckIntervalMs) : -1;
    int n = epoll_wait(epoll_fd_, events, kMaxEvents, timeout);
    if (n < 0 && errno != EINTR) break;  // only EBADF/EINVAL, i.e. the set is gone
    ctx.now_ms = NowMs();
    for (int i = 0; i < n; i++) {
      uint64_t key = events[i].data.u64;
      if (key == 0) {
        uint64_t count;
        (void)!read(wake_fd_, &count, sizeof(count));
        RunCommands(ctx);
        continue;
      }
      if (!Connection::IsEpollKey(key)) {
        auto* tag = static_cast<TaskTag*>(events[i].data.ptr);
        tag->task->OnEvents(tag->slot, events[i].events, ctx);
        continue;
      }
      // Finished earlier in this batch, or a late event for fds it closed (Connection::EpollKey).
      auto it = connections_.find(Connection::IdOfKey(key));
      if (it == connections_.end() || it->second->ended()) continue;
      Connection* c = it->second.get();
      c->OnEvents(Connection::EndOfKey(key), events[i].events);
      if (c->Advance(ctx)) Finish(c, ctx);
    }
    if (idle_watched_ > 0 && ctx.now_ms >= next_idle_check) {
      ExpireIdle(ctx);
      next_idle_check = ctx.now_ms + kIdleCheckIntervalMs;
    }
    // Copied: a task may unhook itself (or another) while being called.
    holding_ = false;
    if (!hooked_.empty()) {
      std::vector<ReactorTask*> hooked = hooked_;
      for (ReactorTask* task : hooked) holding_ = task->AfterEvents(ctx) || holding_;
    }
    finished_.clear();
    pipe_pages_.store(pipes_.pages_owned(), std::memory_order_relaxed);
    idle_pipes_.store(pipes_.idle(), std::memory_order_relaxed);
  }
}

void Reactor::RunCommands(PumpContext& ctx) {
  std::vector<Command> batch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    batch.swap(commands_);
  }
  for (Command& command : batch) {
    if (command.fn) {
      command.fn(*this, ctx);
      continue;
    }
    if (command.connection) {
      Register(std::move(command.connection), ctx);
      continue;
    }
    auto it = connections_.find(command.id);
    if (it == connections_.end() || it->second->ended()) continue;
    Connection* c = it->second.get();
    c->End(CloseCause::kAborted, ctx);
    Finish(c, ctx);
  }
}

void Reactor::Register(std::unique_ptr<Connection> owned, PumpContext& ctx) {
  Connection* c = owned.get();
  c->Begin(ctx.now_ms);
  connections_.emplace(c->id(), std::move(owned));
  if (c->has_idle_timeout()) idle_watched_++;
  for (int end = 0; end < 2; end++) {
    // Edge-triggered: readiness is cached in the connection, which adds EPOLLOUT only while
    // an end is full (Connection::UpdateInterest). An upstream a dial registered is re-pointed
    // to the connection (MOD); ADD and MOD both report readiness that predates them.
    epoll_event ev{};
    ev.events = Connection::kBaseInterest;
    ev.data.u64 = Connection::EpollKey(c->id(), end);
    int op = end == kUpstreamEnd && c->upstream_registered() ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(epoll_fd_, op, c->fd(end), &ev) < 0) {
      int err = errno;
      // An upstream still carrying the dial's tag leaves the set now: the dial is freed after
      // this batch, and close() alone might leave the registration behind (Connection::EpollKey).
      if (c->upstream_registered()) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd(kUpstreamEnd), nullptr);
      c->Fail(end, err, ctx);
      Finish(c, ctx);
      return;
    }
  }
  // Head bytes to send, or data that arrived before registration: start without waiting for an edge.
  if (c->Advance(ctx)) Finish(c, ctx);
}

void Reactor::Finish(Connection* c, PumpContext& ctx) {
  if (c->owner() != nullptr) {
    c->owner()->OnConnectionEnd(*c, ctx);
  } else {
    on_complete_(c->id(), c->outcome());
  }
  if (c->has_idle_timeout()) idle_watched_--;
  auto it = connections_.find(c->id());
  if (it != connections_.end()) {
    finished_.push_back(std::move(it->second));
    connections_.erase(it);
  }
}

void Reactor::ExpireIdle(PumpContext& ctx) {
  std::vector<Connection*> expired;
  for (auto& entry : connections_) {
    if (entry.second->IdleExpired(ctx.now_ms)) expired.push_back(entry.second.get());
  }
  for (Connection* c : expired) {
    c->End(CloseCause::kIdleTimeout, ctx);
    Finish(c, ctx);
  }
}

void Reactor::CloseAll() {
  PumpContext ctx = Context();
  for (auto& entry : connections_) entry.second->End(CloseCause::kAborted, ctx);
  connections_.clear();
  finished_.clear();
  std::lock_guard<std::mutex> lock(mutex_);
  commands_.clear();  // queued connections close their fds in their destructors
}

}  // namespace enclaver
