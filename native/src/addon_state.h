// Per-environment state of the addon (the main thread and each worker thread that loads it get
// their own), stored as N-API instance data and destroyed when that environment is torn down.
#pragma once

#include <napi.h>

#include <memory>

namespace enclaver {

class PumpEngine;
class VsockConnects;

struct AddonState {
  std::unique_ptr<PumpEngine> pump;
  std::unique_ptr<VsockConnects> connects;
  ~AddonState();
};

AddonState& StateOf(Napi::Env env);

}  // namespace enclaver
