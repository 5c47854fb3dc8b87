#include "exports.h"

namespace enclaver {

void ExportFunctions(Napi::Env env, Napi::Object exports, std::initializer_list<ExportedFunction> functions) {
  for (const ExportedFunction& f : functions) exports.Set(f.name, Napi::Function::New(env, f.callback, f.name));
}

}  // namespace enclaver
