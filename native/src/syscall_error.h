// Errors from system calls reach JavaScript as Error objects carrying `errno` (the positive OS
// number) and `syscall`. The TypeScript loader (shared/native/addon.ts) turns them into typed
// NativeErrors named by errno (EBADF, ENOTTY, …), so the name table lives in one place: Node's.
#pragma once

#include <napi.h>

namespace enclaver {

Napi::Error SyscallError(Napi::Env env, const char* syscall, int err);

// Throws the current `errno` of a failed call. Read errno first: nothing may run in between.
[[noreturn]] void ThrowSyscallError(Napi::Env env, const char* syscall, int err);

// Throws an argument error (a programming error on the JS side, not an OS failure).
[[noreturn]] void ThrowArgumentError(Napi::Env env, const char* message);

}  // namespace enclaver
