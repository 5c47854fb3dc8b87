#include "syscall_error.h"

#include <string>

namespace enclaver {

Napi::Error SyscallError(Napi::Env env, const char* syscall, int err) {
  Napi::Error error = Napi::Error::New(env, std::string(syscall) + " failed");
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

void ThrowSyscallError(Napi::Env env, const char* syscall, int err) {
  throw SyscallError(env, syscall, err);
}

void ThrowArgumentError(Napi::Env env, const char* message) {
  throw Napi::TypeError::New(env, message);
}

}  // namespace enclaver
