// Per-environment state of the addon (the main thread and each worker thread that loads it get
// their own), stored as N-API instance data and destroyed when that environment is torn down.
#pragma once

#include <napi.h>

#include <memory>

namespace enclaver {

class PumpEngine;
class VsockConnects;
class FastPathRegistry;

struct AddonState {
  std::unique_ptr<PumpEngine> pump;
  std::unique_ptr<VsockConnects> connects;
  std::unique_ptr<FastPathRegistry> fastpath;  // destroyed before `pump`, whose threads it uses
  ~AddonState();
};

AddonState& StateOf(Napi::Env env);

}  // namespace enclaver
