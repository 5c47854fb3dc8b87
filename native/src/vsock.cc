// AF_VSOCK sockets for the real (non-emulated) transport. Every socket is created non-blocking
// and close-on-exec; JavaScript wraps the fds into net.Socket / net.Server (shared/native/fd-socket.ts)
// or hands them to the pump.
#include "vsock.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
// After sys/socket.h, which it relies on.
#include <linux/vm_sockets.h>

#include <cerrno>
#include <cmath>
#include <vector>

#include "addon_state.h"
#include "exports.h"
#include "fd.h"
#include "syscall_error.h"

namespace enclaver {

struct VsockConnects::Attempt {
  uv_poll_t poll;
  int fd;
  uint64_t token;
  Napi::FunctionReference callback;
  VsockConnects* owner;
};

VsockConnects::VsockConnects(napi_env env) : env_(env) {}

VsockConnects::~VsockConnects() {
  // Environment teardown: nobody is left to be told; release everything quietly.
  for (auto& entry : attempts_) {
    Attempt* a = entry.second;
    uv_poll_stop(&a->poll);
    CloseQuietly(a->fd);
    a->callback.Reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&a->poll), [](uv_handle_t* h) { delete static_cast<Attempt*>(h->data); });
  }
  attempts_.clear();
}

uint64_t VsockConnects::Watch(int fd, Napi::Function callback) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env_, &loop) != napi_ok || loop == nullptr) {
    CloseQuietly(fd);
    throw Napi::Error::New(Napi::Env(env_), "no event loop available for vsock connect");
  }
  auto* a = new Attempt();
  a->fd = fd;
  a->token = next_token_++;
  a->owner = this;
  a->poll.data = a;
  int rc = uv_poll_init(loop, &a->poll, fd);
  if (rc != 0) {
    CloseQuietly(fd);
    delete a;
    ThrowSyscallError(Napi::Env(env_), "uv_poll_init", -rc);
  }
  rc = uv_poll_start(&a->poll, UV_WRITABLE, OnPoll);
  if (rc != 0) {
    CloseQuietly(fd);
    uv_close(reinterpret_cast<uv_handle_t*>(&a->poll), [](uv_handle_t* h) { delete static_cast<Attempt*>(h->data); });
    ThrowSyscallError(Napi::Env(env_), "uv_poll_start", -rc);
  }
  a->callback = Napi::Persistent(callback);
  attempts_.emplace(a->token, a);
  return a->token;
}

void VsockConnects::Forget(Attempt* a) {
  attempts_.erase(a->token);
  uv_poll_stop(&a->poll);
  a->callback.Reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&a->poll), [](uv_handle_t* h) { delete static_cast<Attempt*>(h->data); });
}

bool VsockConnects::Cancel(uint64_t token) {
  auto it = attempts_.find(token);
  if (it == attempts_.end()) return false;
  Attempt* a = it->second;
  CloseQuietly(a->fd);
  Forget(a);
  return true;
}

void VsockConnects::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* a = static_cast<Attempt*>(handle->data);
  VsockConnects* self = a->owner;
  Napi::Env env(self->env_);
  Napi::HandleScope scope(env);
  // The connect's outcome is SO_ERROR, whatever libuv says: on a failed connect the socket polls
  // POLLERR, which libuv reports as UV_EBADF; the kernel's reason (ECONNRESET when nobody listens on
  // the port, ETIMEDOUT, ENODEV) is only in SO_ERROR. libuv's status is the fallback when SO_ERROR
  // itself cannot be read or says nothing.
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err == 0 && status < 0) err = -status;
  Napi::FunctionReference callback = std::move(a->callback);
  int fd = a->fd;
  self->Forget(a);
  std::vector<napi_value> args;
  if (err != 0) {
    CloseQuietly(fd);
    args = {SyscallError(env, "connect", err).Value()};
  } else {
    args = {env.Null(), Napi::Number::New(env, fd)};
  }
  try {
    callback.MakeCallback(env.Global(), args);
  } catch (const Napi::Error& e) {
    // An exception thrown by the JS callback is the application's; report it as uncaught.
    napi_fatal_exception(env, e.Value());
  }
}

namespace {

uint32_t Uint32Argument(const Napi::CallbackInfo& info, size_t index, const char* message) {
  Napi::Value v = info[index];
  if (!v.IsNumber()) ThrowArgumentError(info.Env(), message);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 0xffffffffu || std::floor(d) != d) ThrowArgumentError(info.Env(), message);
  return static_cast<uint32_t>(d);
}

sockaddr_vm VsockAddress(uint32_t cid, uint32_t port) {
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = cid;
  addr.svm_port = port;
  return addr;
}

int NewVsockSocket(Napi::Env env) {
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowSyscallError(env, "socket(AF_VSOCK)", errno);
  return fd;
}

// vsockListen(cid, port, backlog) → listening fd (owned by the caller).
Napi::Value VsockListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t cid = Uint32Argument(info, 0, "vsockListen(cid, port, backlog): cid must be a 32-bit unsigned integer");
  uint32_t port = Uint32Argument(info, 1, "vsockListen(cid, port, backlog): port must be a 32-bit unsigned integer");
  uint32_t backlog = Uint32Argument(info, 2, "vsockListen(cid, port, backlog): backlog must be a non-negative integer");
  int fd = NewVsockSocket(env);
  sockaddr_vm addr = VsockAddress(cid, port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    int err = errno;
    CloseQuietly(fd);
    ThrowSyscallError(env, "bind", err);
  }
  if (listen(fd, static_cast<int>(backlog > 65535 ? 65535 : backlog)) < 0) {
    int err = errno;
    CloseQuietly(fd);
    ThrowSyscallError(env, "listen", err);
  }
  return Napi::Number::New(env, fd);
}

// vsockConnect(cid, port, timeoutMs, callback(err, fd)) → token for vsockConnectCancel.
// Errors the kernel reports at once (no transport, bad CID) are thrown synchronously.
Napi::Value VsockConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t cid = Uint32Argument(info, 0, "vsockConnect(cid, port, timeoutMs, cb): cid must be a 32-bit unsigned integer");
  uint32_t port = Uint32Argument(info, 1, "vsockConnect(cid, port, timeoutMs, cb): port must be a 32-bit unsigned integer");
  uint32_t timeoutMs = Uint32Argument(info, 2, "vsockConnect(cid, port, timeoutMs, cb): timeoutMs must be a non-negative integer");
  if (!info[3].IsFunction()) ThrowArgumentError(env, "vsockConnect(cid, port, timeoutMs, cb): cb must be a function");
  int fd = NewVsockSocket(env);
  // The kernel's own connect timeout (2 s by default) bounds the attempt; align it with the caller's.
  if (timeoutMs > 0) {
    timeval tv{};
    tv.tv_sec = timeoutMs / 1000;
    tv.tv_usec = static_cast<suseconds_t>(timeoutMs % 1000) * 1000;
    setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv));
  }
  sockaddr_vm addr = VsockAddress(cid, port);
  int rc;
  do {
    rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0 && errno != EINPROGRESS) {
    int err = errno;
    CloseQuietly(fd);
    ThrowSyscallError(env, "connect", err);
  }
  // Even an immediate success is reported through the poll, so the callback is always async.
  uint64_t token = StateOf(env).connects->Watch(fd, info[3].As<Napi::Function>());
  return Napi::Number::New(env, static_cast<double>(token));
}

Napi::Value VsockConnectCancel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) ThrowArgumentError(env, "vsockConnectCancel(token): token must be a number");
  uint64_t token = static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue());
  return Napi::Boolean::New(env, StateOf(env).connects->Cancel(token));
}

// vsockLocalCid() → this machine's CID, from IOCTL_VM_SOCKETS_GET_LOCAL_CID on /dev/vsock.
Napi::Value VsockLocalCid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
  if (fd < 0) ThrowSyscallError(env, "open(/dev/vsock)", errno);
  unsigned int cid = 0;
  int rc = ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid);
  int err = errno;
  CloseQuietly(fd);
  if (rc < 0) ThrowSyscallError(env, "ioctl(IOCTL_VM_SOCKETS_GET_LOCAL_CID)", err);
  return Napi::Number::New(env, cid);
}

// vsockSocketSupported() → whether the kernel can create AF_VSOCK sockets at all.
Napi::Value VsockSocketSupported(const Napi::CallbackInfo& info) {
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool ok = fd >= 0;
  CloseQuietly(fd);
  return Napi::Boolean::New(info.Env(), ok);
}

// vsockAddress(fd, peer) → {cid, port} of the local end (peer=false) or the remote end.
Napi::Value VsockAddressOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArgument(info, 0, "vsockAddress(fd, peer): fd must be a non-negative integer");
  bool peer = info[1].ToBoolean().Value();
  sockaddr_vm addr{};
  socklen_t len = sizeof(addr);
  int rc = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len)
                : getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  if (rc < 0) ThrowSyscallError(env, peer ? "getpeername" : "getsockname", errno);
  if (addr.svm_family != AF_VSOCK) ThrowSyscallError(env, peer ? "getpeername" : "getsockname", EAFNOSUPPORT);
  Napi::Object out = Napi::Object::New(env);
  out.Set("cid", Napi::Number::New(env, addr.svm_cid));
  out.Set("port", Napi::Number::New(env, addr.svm_port));
  return out;
}

}  // namespace

void RegisterVsockFunctions(Napi::Env env, Napi::Object exports) {
  ExportFunctions(env, exports, {
      {"vsockListen", VsockListen},
      {"vsockConnect", VsockConnect},
      {"vsockConnectCancel", VsockConnectCancel},
      {"vsockLocalCid", VsockLocalCid},
      {"vsockSocketSupported", VsockSocketSupported},
      {"vsockAddress", VsockAddressOf},
  });
}

}  // namespace enclaver
