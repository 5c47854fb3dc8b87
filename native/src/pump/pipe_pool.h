// Pipes for splice(2), pooled per pump thread.
//
// A pipe is taken only while bytes are in flight and returned as soon as it is empty, so an idle
// connection holds no pipe. Pipe capacity counts against the per-user `fs.pipe-user-pages-soft`
// budget (past it the kernel silently shrinks new pipes to one page), so the pool keeps the pages
// it owns under a budget; when the budget is spent the caller copies through a buffer instead.
#pragma once

#include <cstddef>
#include <vector>

namespace enclaver {

struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
  size_t capacity = 0;
};

class PipePool {
 public:
  // `wanted_size`: capacity asked of F_SETPIPE_SZ; `budget_pages`: ceiling on the pages of all
  // pipes this pool owns (idle or in use); `max_idle`: pipes kept open while unused.
  PipePool(size_t wanted_size, size_t budget_pages, size_t max_idle);
  ~PipePool();
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;

  // An empty pipe, or false when the page budget is spent or pipe2 failed (copy instead).
  bool Acquire(Pipe* out);
  // Returns an empty pipe.
  void Release(const Pipe& pipe);
  // Closes a pipe that may still hold bytes (connection torn down mid-transfer).
  void Discard(const Pipe& pipe);

  size_t pages_owned() const { return pages_owned_; }
  size_t idle() const { return idle_.size(); }
  // Capacity of the last pipe created (what F_SETPIPE_SZ really gave), 0 before the first.
  size_t last_capacity() const { return last_capacity_; }

 private:
  size_t PagesOf(size_t capacity) const;
  void Close(const Pipe& pipe);

  size_t wanted_size_;
  size_t budget_pages_;
  size_t max_idle_;
  size_t page_size_;
  size_t pages_owned_ = 0;
  size_t last_capacity_ = 0;
  std::vector<Pipe> idle_;
};

}  // namespace enclaver
