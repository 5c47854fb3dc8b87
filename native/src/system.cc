// System calls for the enclave bootstrap and the supervisor (see system.h). Each function is one
// call or one short sequence with no state kept between calls; failures throw errno-named errors.
#include "exports.h"
#include "system.h"

#include <fcntl.h>
#include <linux/random.h>
#include <net/if.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "fd.h"
#include "syscall_error.h"

namespace enclaver {

namespace {

std::string InterfaceName(const Napi::CallbackInfo& info, const char* usage) {
  if (!info[0].IsString()) ThrowArgumentError(info.Env(), usage);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.empty() || name.size() >= IFNAMSIZ) ThrowArgumentError(info.Env(), usage);
  return name;
}

// The interface's flags through SIOCGIFFLAGS on a throw-away datagram socket (any family works;
// AF_INET exists in every kernel we run on, including an enclave's).
short ReadFlags(Napi::Env env, int sock, ifreq* req) {
  if (ioctl(sock, SIOCGIFFLAGS, req) < 0) {
    int err = errno;
    CloseQuietly(sock);
    ThrowSyscallError(env, "ioctl(SIOCGIFFLAGS)", err);
  }
  return req->ifr_flags;
}

int DatagramSocket(Napi::Env env) {
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) ThrowSyscallError(env, "socket(AF_INET)", errno);
  return sock;
}

// interfaceUp(name) → whether it was down before. Sets IFF_UP with SIOCSIFFLAGS (needs
// CAP_NET_ADMIN), the ioctl that `ip link set NAME up` ends in; no netlink needed for one flag.
Napi::Value InterfaceUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = InterfaceName(info, "interfaceUp(name): name must be an interface name");
  int sock = DatagramSocket(env);
  ifreq req{};
  std::strncpy(req.ifr_name, name.c_str(), IFNAMSIZ - 1);
  short flags = ReadFlags(env, sock, &req);
  bool wasDown = (flags & IFF_UP) == 0;
  if (wasDown) {
    req.ifr_flags = static_cast<short>(flags | IFF_UP);
    if (ioctl(sock, SIOCSIFFLAGS, &req) < 0) {
      int err = errno;
      CloseQuietly(sock);
      ThrowSyscallError(env, "ioctl(SIOCSIFFLAGS)", err);
    }
  }
  CloseQuietly(sock);
  return Napi::Boolean::New(env, wasDown);
}

// interfaceIsUp(name) → IFF_UP of the interface.
Napi::Value InterfaceIsUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = InterfaceName(info, "interfaceIsUp(name): name must be an interface name");
  int sock = DatagramSocket(env);
  ifreq req{};
  std::strncpy(req.ifr_name, name.c_str(), IFNAMSIZ - 1);
  short flags = ReadFlags(env, sock, &req);
  CloseQuietly(sock);
  return Napi::Boolean::New(env, (flags & IFF_UP) != 0);
}

// addEntropy(bytes) → mixes the bytes into the kernel's pool and credits them as entropy
// (RNDADDENTROPY on /dev/random, needs CAP_SYS_ADMIN). Writing to /dev/random would mix them
// without crediting, which is what the ioctl exists for.
Napi::Value AddEntropy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer()) ThrowArgumentError(env, "addEntropy(bytes): bytes must be a Buffer");
  auto bytes = info[0].As<Napi::Buffer<uint8_t>>();
  if (bytes.Length() == 0 || bytes.Length() > 4096) ThrowArgumentError(env, "addEntropy(bytes): 1 to 4096 bytes");
  std::vector<uint8_t> storage(sizeof(rand_pool_info) + bytes.Length());
  auto* pool = reinterpret_cast<rand_pool_info*>(storage.data());
  pool->entropy_count = static_cast<int>(bytes.Length() * 8);
  pool->buf_size = static_cast<int>(bytes.Length());
  std::memcpy(pool->buf, bytes.Data(), bytes.Length());
  int fd = open("/dev/random", O_WRONLY | O_CLOEXEC);
  if (fd < 0) ThrowSyscallError(env, "open(/dev/random)", errno);
  int rc = ioctl(fd, RNDADDENTROPY, pool);
  int err = errno;
  CloseQuietly(fd);
  if (rc < 0) ThrowSyscallError(env, "ioctl(RNDADDENTROPY)", err);
  return env.Undefined();
}

// setRealtimeClock(msSinceEpoch) → clock_settime(CLOCK_REALTIME) (needs CAP_SYS_TIME).
Napi::Value SetRealtimeClock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) ThrowArgumentError(env, "setRealtimeClock(ms): ms must be a number");
  double ms = info[0].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(ms) || ms < 0) ThrowArgumentError(env, "setRealtimeClock(ms): ms must be a non-negative finite number");
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ms / 1000);
  ts.tv_nsec = static_cast<long>(std::fmod(ms, 1000) * 1e6);
  if (clock_settime(CLOCK_REALTIME, &ts) < 0) ThrowSyscallError(env, "clock_settime(CLOCK_REALTIME)", errno);
  return env.Undefined();
}

// reapChild(pid) → null while it runs, else {code} or {signal} (waitpid WNOHANG on that pid only,
// so children that libuv waits for are never taken from it).
Napi::Value ReapChild(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) ThrowArgumentError(env, "reapChild(pid): pid must be a number");
  pid_t pid = static_cast<pid_t>(info[0].As<Napi::Number>().Int32Value());
  if (pid <= 0) ThrowArgumentError(env, "reapChild(pid): pid must be positive");
  int status = 0;
  pid_t rc;
  do {
    rc = waitpid(pid, &status, WNOHANG);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) ThrowSyscallError(env, "waitpid", errno);
  if (rc == 0) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  if (WIFEXITED(status)) out.Set("code", Napi::Number::New(env, WEXITSTATUS(status)));
  else if (WIFSIGNALED(status)) out.Set("signal", Napi::Number::New(env, WTERMSIG(status)));
  return out;
}

// setChildSubreaper() → orphans of our descendants are re-parented to us, not to PID 1.
Napi::Value SetChildSubreaper(const Napi::CallbackInfo& info) {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) ThrowSyscallError(info.Env(), "prctl(PR_SET_CHILD_SUBREAPER)", errno);
  return info.Env().Undefined();
}

// tryLockFile(path) → an fd holding an exclusive flock on the file, or null when another process
// holds it. The lock goes with the fd (closeFd) or the process: a crash never leaves it behind.
Napi::Value TryLockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowArgumentError(env, "tryLockFile(path): path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) ThrowSyscallError(env, "open", errno);
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    int err = errno;
    CloseQuietly(fd);
    if (err == EWOULDBLOCK) return env.Null();
    ThrowSyscallError(env, "flock", err);
  }
  return Napi::Number::New(env, fd);
}

}  // namespace

void RegisterSystemFunctions(Napi::Env env, Napi::Object exports) {
  ExportFunctions(env, exports, {
      {"interfaceUp", InterfaceUp},
      {"interfaceIsUp", InterfaceIsUp},
      {"addEntropy", AddEntropy},
      {"setRealtimeClock", SetRealtimeClock},
      {"reapChild", ReapChild},
      {"setChildSubreaper", SetChildSubreaper},
      {"tryLockFile", TryLockFile},
  });
}

}  // namespace enclaver
