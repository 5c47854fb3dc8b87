#pragma once

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <unordered_map>

namespace enclaver {

// Non-blocking connects in flight. A vsock connect completes asynchronously (EINPROGRESS); the
// socket is watched with a one-shot uv_poll on Node's own loop until it becomes writable, which
// keeps the process alive while the attempt is pending, like a net.Socket connect would.
class VsockConnects {
 public:
  explicit VsockConnects(napi_env env);
  ~VsockConnects();
  VsockConnects(const VsockConnects&) = delete;
  VsockConnects& operator=(const VsockConnects&) = delete;

  // Takes ownership of `fd` (a socket whose connect returned EINPROGRESS).
  uint64_t Watch(int fd, Napi::Function callback);
  // Stops watching and closes the fd; the callback is never called.
  bool Cancel(uint64_t token);

 private:
  struct Attempt;
  static void OnPoll(uv_poll_t* handle, int status, int events);
  void Forget(Attempt* attempt);

  napi_env env_;
  uint64_t next_token_ = 1;
  std::unordered_map<uint64_t, Attempt*> attempts_;
};

void RegisterVsockFunctions(Napi::Env env, Napi::Object exports);

}  // namespace enclaver
