// A pump thread: one epoll set, the connections assigned to it, its own pipe pool.
//
// JS threads talk to it only through a mutex-protected command queue and an eventfd wake-up;
// everything else (the connections, the pool, the scratch buffer, the tasks) belongs to the thread.
//
// Besides pumped connections the thread runs tasks (the native fast path: an acceptor per
// listener, a dial per connection being set up). A task registers its fds with a TaskTag (as
// epoll_event.data.ptr); it is called on that thread only, so it needs no locks of its own.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "pump/connection.h"
#include "pump/pipe_pool.h"

namespace enclaver {

class Reactor;

// Work other than pumping that lives on a reactor thread. All calls come from that thread.
class ReactorTask {
 public:
  virtual ~ReactorTask() = default;
  // epoll reported `events` for an fd this task registered with TaskTag{this, slot}.
  virtual void OnEvents(int slot, uint32_t events, PumpContext& ctx) = 0;
  // A connection created with Options::owner == this has ended (both fds are closed).
  virtual void OnConnectionEnd(const Connection& connection, PumpContext& ctx) {}
  // Hooked tasks only (Reactor::Hook): once after every batch of events, and at least once a
  // second (deadlines). Returns true while it holds work back for a moment (a report it is
  // still collecting): the thread then wakes within kHoldWakeMs even without events.
  virtual bool AfterEvents(PumpContext& ctx) { return false; }
};

// The tag epoll carries for one fd of a task; it must live as long as the registration (a task
// takes its fds out of the epoll set before it frees its tags).
struct TaskTag {
  ReactorTask* task;
  int slot;
};

// How soon a reactor wakes without events while a hooked task holds work back.
constexpr int kHoldWakeMs = 10;

struct ReactorSettings {
  size_t pipe_size = 256 * 1024;
  size_t pipe_budget_pages = 8192;
  size_t max_idle_pipes = 32;
};

class Reactor {
 public:
  // Called on the reactor thread, once per connection, after both fds are closed.
  using CompletionFn = std::function<void(uint64_t id, const PumpOutcome& outcome)>;

  Reactor(const ReactorSettings& settings, PumpCounters* counters, CompletionFn on_complete);
  // Stops the thread; connections still open are closed and reported to nobody.
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Creates the epoll set and starts the thread; returns an errno on failure, 0 on success.
  int Start();
  // Thread-safe. The reactor owns the connection (and its fds) from here on.
  void Add(std::unique_ptr<Connection> connection);
  // Thread-safe. Unknown ids (already finished) are ignored.
  void Abort(uint64_t id);
  // Thread-safe: runs `fn` on the reactor thread, in order with the other commands. Functions
  // still queued when the reactor stops are destroyed without running.
  void Execute(std::function<void(Reactor&, PumpContext&)> fn);

  // Reactor thread only (from tasks and Execute'd functions).
  // Takes the connection and starts pumping it, as Add does for connections from JS.
  void Adopt(std::unique_ptr<Connection> connection, PumpContext& ctx);
  // Ends one of this thread's connections now (closedBy aborted); false when it is unknown.
  bool AbortNow(uint64_t id, PumpContext& ctx);
  // Calls task->AfterEvents after every batch and once a second until Unhook.
  void Hook(ReactorTask* task);
  void Unhook(ReactorTask* task);
  int epoll_fd() const { return epoll_fd_; }

  size_t pipe_pages() const { return pipe_pages_.load(std::memory_order_relaxed); }
  size_t idle_pipes() const { return idle_pipes_.load(std::memory_order_relaxed); }

 private:
  struct Command {
    std::unique_ptr<Connection> connection;  // set: add it
    std::function<void(Reactor&, PumpContext&)> fn;  // set: run it
    uint64_t id = 0;  // neither set: abort `id`
  };

  void Post(Command command);
  void Run();
  void RunCommands(PumpContext& ctx);
  void Register(std::unique_ptr<Connection> connection, PumpContext& ctx);
  void Finish(Connection* connection, PumpContext& ctx);
  void ExpireIdle(PumpContext& ctx);
  void CloseAll();
  PumpContext Context();

  ReactorSettings settings_;
  PumpCounters* counters_;
  CompletionFn on_complete_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};

  std::mutex mutex_;
  std::vector<Command> commands_;  // guarded by mutex_

  // Thread-owned state.
  PipePool pipes_;
  std::vector<char> scratch_;
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::vector<std::unique_ptr<Connection>> finished_;  // freed after the current event batch
  size_t idle_watched_ = 0;
  std::vector<ReactorTask*> hooked_;
  bool holding_ = false;  // a hooked task asked to be called again soon

  std::atomic<size_t> pipe_pages_{0};
  std::atomic<size_t> idle_pipes_{0};
};

}  // namespace enclaver
