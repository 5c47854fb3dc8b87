#pragma once

#include <napi.h>

namespace enclaver {

void RegisterNsmFunctions(Napi::Env env, Napi::Object exports);

}  // namespace enclaver
