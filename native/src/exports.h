// How each module of the addon hands its functions to JavaScript. The name is written once: it is
// both the key on the addon object and the function's own `name` (what a stack trace shows), so
// the two cannot drift apart, and a module's list reads as a table, not as repeated calls.
#pragma once

#include <initializer_list>

#include <napi.h>

namespace enclaver {

struct ExportedFunction {
  const char* name;
  Napi::Function::Callback callback;
};

void ExportFunctions(Napi::Env env, Napi::Object exports, std::initializer_list<ExportedFunction> functions);

}  // namespace enclaver
