// The Nitro Secure Module device takes one CBOR request and returns one CBOR response through a
// single ioctl (aws-nitro-enclaves-nsm-api, driver `nsm.c`): NSM_IOCTL_RAW = _IOWR(0x0A, 0,
// struct nsm_raw) = 0xC0200A00 on 64-bit Linux. The kernel writes the response length back into
// response.len. Encoding and decoding the CBOR is the JS side's job.
#include "exports.h"
#include "nsm.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "fd.h"
#include "syscall_error.h"

namespace enclaver {

namespace {

struct NsmIovec {
  uint64_t addr;
  uint64_t len;
};

struct NsmRaw {
  NsmIovec request;
  NsmIovec response;
};

static_assert(sizeof(NsmRaw) == 32, "struct nsm_raw must match the driver's layout");

constexpr unsigned long kNsmIoctlRaw = 0xC0200A00UL;

// nsmIoctl(fd, request, maxResponse) → Buffer holding the response bytes.
Napi::Value NsmIoctl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArgument(info, 0, "nsmIoctl(fd, request, maxResponse): fd must be a non-negative integer");
  if (!info[1].IsBuffer()) ThrowArgumentError(env, "nsmIoctl(fd, request, maxResponse): request must be a Buffer");
  if (!info[2].IsNumber()) ThrowArgumentError(env, "nsmIoctl(fd, request, maxResponse): maxResponse must be a number");
  double max = info[2].As<Napi::Number>().DoubleValue();
  if (!(max >= 1) || max > (64 << 20)) ThrowArgumentError(env, "nsmIoctl: maxResponse must be between 1 and 64 MiB");

  Napi::Buffer<uint8_t> request = info[1].As<Napi::Buffer<uint8_t>>();
  std::vector<uint8_t> response(static_cast<size_t>(max));
  NsmRaw raw{};
  raw.request.addr = reinterpret_cast<uintptr_t>(request.Data());
  raw.request.len = request.Length();
  raw.response.addr = reinterpret_cast<uintptr_t>(response.data());
  raw.response.len = response.size();

  int rc;
  do {
    rc = ioctl(fd, kNsmIoctlRaw, &raw);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) ThrowSyscallError(env, "ioctl(NSM_IOCTL_RAW)", errno);
  // The driver never reports more than we offered; guard anyway rather than read past the buffer.
  size_t written = raw.response.len < response.size() ? static_cast<size_t>(raw.response.len) : response.size();
  return Napi::Buffer<uint8_t>::Copy(env, response.data(), written);
}

}  // namespace

void RegisterNsmFunctions(Napi::Env env, Napi::Object exports) {
  ExportFunctions(env, exports, {
      {"nsmIoctl", NsmIoctl},
  });
}

}  // namespace enclaver
