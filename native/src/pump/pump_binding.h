// The JS face of the pump: pumpConfigure / pumpStart / pumpAbort / pumpStats / spliceProbe.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "pump/connection.h"
#include "pump/reactor.h"

namespace enclaver {

struct PumpCompletion {
  uint64_t id;
  PumpOutcome outcome;
};

class PumpEngine {
 public:
  explicit PumpEngine(Napi::Env env);
  ~PumpEngine();
  PumpEngine(const PumpEngine&) = delete;
  PumpEngine& operator=(const PumpEngine&) = delete;

  Napi::Value Configure(const Napi::CallbackInfo& info);
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Abort(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);

  // Starts the pump threads if they are not running yet (the fast path's listeners live on them).
  void EnsureStarted(Napi::Env env);
  std::vector<Reactor*> reactors() const {
    std::vector<Reactor*> out;
    for (const auto& r : reactors_) out.push_back(r.get());
    return out;
  }

 private:
  static void CallJs(Napi::Env env, Napi::Function unused, PumpEngine* engine, PumpCompletion* completion);
  using Tsfn = Napi::TypedThreadSafeFunction<PumpEngine, PumpCompletion, &PumpEngine::CallJs>;

  void Deliver(Napi::Env env, PumpCompletion* completion);
  static void StopOnTeardown(void* engine);
  void StopReactors();

  napi_env env_;
  ReactorSettings settings_;
  size_t thread_count_ = 1;
  bool started_ = false;
  bool stopped_ = false;
  PumpCounters counters_;
  std::vector<std::unique_ptr<Reactor>> reactors_;
  Tsfn tsfn_;
  uint64_t next_id_ = 1;
  size_t active_ = 0;
  std::unordered_map<uint64_t, Napi::FunctionReference> callbacks_;  // main thread only
};

// The `closedBy` string JS reads for a cause (shared/pump/types.ts `CloseCause`): the pump's and
// the fast path's results use the same names.
const char* CloseCauseName(CloseCause cause);

// This environment's engine, created on first use.
PumpEngine& PumpEngineOf(Napi::Env env);

void RegisterPumpFunctions(Napi::Env env, Napi::Object exports);

}  // namespace enclaver
