#include "pump/pipe_pool.h"

#include <fcntl.h>
#include <unistd.h>

namespace enclaver {

PipePool::PipePool(size_t wanted_size, size_t budget_pages, size_t max_idle)
    : wanted_size_(wanted_size), budget_pages_(budget_pages), max_idle_(max_idle) {
  long page = sysconf(_SC_PAGESIZE);
  page_size_ = page > 0 ? static_cast<size_t>(page) : 4096;
}

PipePool::~PipePool() {
  for (const Pipe& p : idle_) Close(p);
}

size_t PipePool::PagesOf(size_t capacity) const {
  return (capacity + page_size_ - 1) / page_size_;
}

bool PipePool::Acquire(Pipe* out) {
  if (!idle_.empty()) {
    *out = idle_.back();
    idle_.pop_back();
    return true;
  }
  if (pages_owned_ + PagesOf(wanted_size_) > budget_pages_) return false;
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) return false;
  // Growth can be refused (pipe-max-size, or the user's soft page limit); the default capacity
  // still works, only with more splice calls per megabyte.
  fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(wanted_size_));
  int capacity = fcntl(fds[1], F_GETPIPE_SZ);
  Pipe p;
  p.read_fd = fds[0];
  p.write_fd = fds[1];
  p.capacity = capacity > 0 ? static_cast<size_t>(capacity) : page_size_;
  pages_owned_ += PagesOf(p.capacity);
  last_capacity_ = p.capacity;
  *out = p;
  return true;
}

void PipePool::Release(const Pipe& pipe) {
  if (idle_.size() < max_idle_) {
    idle_.push_back(pipe);
  } else {
    Close(pipe);
  }
}

void PipePool::Discard(const Pipe& pipe) {
  Close(pipe);
}

void PipePool::Close(const Pipe& pipe) {
  close(pipe.read_fd);
  close(pipe.write_fd);
  size_t pages = PagesOf(pipe.capacity);
  pages_owned_ = pages_owned_ > pages ? pages_owned_ - pages : 0;
}

}  // namespace enclaver
