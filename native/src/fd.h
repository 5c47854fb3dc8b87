// Small file-descriptor helpers shared by the vsock, NSM and pump modules.
#pragma once

#include <napi.h>

namespace enclaver {

// Reads a non-negative integer fd argument or throws a TypeError.
int FdArgument(const Napi::CallbackInfo& info, size_t index, const char* name);

// close(2) that retries nothing: on Linux the fd is released even when close reports EINTR.
void CloseQuietly(int fd);

void RegisterFdFunctions(Napi::Env env, Napi::Object exports);

}  // namespace enclaver
