// The few system calls the runtime needs that Node has no API for: bringing an interface up, the
// kernel RNG's entropy ioctl, setting the realtime clock, reaping one child, and a non-blocking
// flock. Used by the enclave bootstrap (proxy-inner/bootstrap/) and the enclave supervisor.
#pragma once

#include <napi.h>

namespace enclaver {

void RegisterSystemFunctions(Napi::Env env, Napi::Object exports);

}  // namespace enclaver
