// A pump thread: one epoll set, the connections assigned to it, its own pipe pool.
//
// JS threads talk to it only through a mutex-protected command queue and an eventfd wake-up;
// everything else (the connections, the pool, the scratch buffer) belongs to the thread.
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

  size_t pipe_pages() const { return pipe_pages_.load(std::memory_order_relaxed); }
  size_t idle_pipes() const { return idle_pipes_.load(std::memory_order_relaxed); }

 private:
  struct Command {
    std::unique_ptr<Connection> connection;  // set: add it; null: abort `id`
    uint64_t id = 0;
  };

  void Post(Command command);
  void Run();
  void RunCommands(PumpContext& ctx);
  void Register(std::unique_ptr<Connection> connection, PumpContext& ctx);
  void Finish(Connection* connection);
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

  std::atomic<size_t> pipe_pages_{0};
  std::atomic<size_t> idle_pipes_{0};
};

}  // namespace enclaver
