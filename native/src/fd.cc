#include "fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>

#include "exports.h"
#include "syscall_error.h"

namespace enclaver {

int FdArgument(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = info[index];
  if (!v.IsNumber()) ThrowArgumentError(info.Env(), name);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 0x7fffffff || std::floor(d) != d) ThrowArgumentError(info.Env(), name);
  return static_cast<int>(d);
}

void CloseQuietly(int fd) {
  if (fd >= 0) close(fd);
}

namespace {

// dupFd(fd): a close-on-exec duplicate that the caller owns. Used to take a socket away from
// libuv: JS dups the fd, destroys its net.Socket (libuv closes only its own fd), and the
// duplicate keeps the connection open for the pump.
Napi::Value DupFd(const Napi::CallbackInfo& info) {
  int fd = FdArgument(info, 0, "dupFd(fd): fd must be a non-negative integer");
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) ThrowSyscallError(info.Env(), "fcntl(F_DUPFD_CLOEXEC)", errno);
  return Napi::Number::New(info.Env(), copy);
}

// closeFd(fd): releases an fd the caller owns (one that was never handed to libuv or the pump).
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = FdArgument(info, 0, "closeFd(fd): fd must be a non-negative integer");
  if (close(fd) < 0 && errno != EINTR) ThrowSyscallError(info.Env(), "close", errno);
  return info.Env().Undefined();
}

}  // namespace

void RegisterFdFunctions(Napi::Env env, Napi::Object exports) {
  ExportFunctions(env, exports, {
      {"dupFd", DupFd},
      {"closeFd", CloseFd},
  });
}

}  // namespace enclaver
