// The JS face of the native fast path: fastBindTcp / fastBindUnix / fastListen / fastStop /
// fastAbortAll / fastRelease / fastClose (typed in shared/native/addon.ts).
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <unordered_map>

namespace enclaver {

struct FastHandle;

// Every fast listener of one environment, by the handle number JS holds.
class FastPathRegistry {
 public:
  ~FastPathRegistry();
  std::unordered_map<uint32_t, std::unique_ptr<FastHandle>> handles;
  uint32_t next_handle = 1;
};

void RegisterFastPathFunctions(Napi::Env env, Napi::Object exports);

}  // namespace enclaver
