// enclaver_native: AF_VSOCK sockets, the splice(2) pump, the NSM ioctl and the enclave bootstrap's
// system calls for enclaver-proxy.
// Loaded through shared/native/addon.ts, which types it and turns its errors into NativeErrors.
#include <napi.h>

#include "addon_state.h"
#include "fastpath/fastpath_binding.h"
#include "fd.h"
#include "nsm.h"
#include "pump/pump_binding.h"
#include "system.h"
#include "vsock.h"

namespace enclaver {

AddonState::~AddonState() = default;

AddonState& StateOf(Napi::Env env) {
  return *env.GetInstanceData<AddonState>();
}

namespace {

void ReleaseConnectsOnTeardown(void* state) {
  // Pending vsock connects hold uv handles; close them while the loop can still run callbacks.
  static_cast<AddonState*>(state)->connects.reset();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* state = new AddonState();
  state->connects = std::make_unique<VsockConnects>(env);
  env.SetInstanceData<AddonState>(state);
  napi_add_env_cleanup_hook(env, ReleaseConnectsOnTeardown, state);
  RegisterFdFunctions(env, exports);
  RegisterVsockFunctions(env, exports);
  RegisterNsmFunctions(env, exports);
  RegisterPumpFunctions(env, exports);
  RegisterSystemFunctions(env, exports);
  RegisterFastPathFunctions(env, exports);
  return exports;
}

}  // namespace enclaver

static Napi::Object InitEnclaverNative(Napi::Env env, Napi::Object exports) {
  return enclaver::Init(env, exports);
}

NODE_API_MODULE(enclaver_native, InitEnclaverNative)
