// glibc malloc housekeeping for an idle process (issue 15, src/native/memory.ts):
// mallocTrim() -> malloc_trim(0): gives the free pages of every malloc arena back to the kernel
// (the top of each heap and the whole pages inside free chunks), true if any memory was
// released. On a C library without it (musl) it returns false and changes nothing.
#include <cstdlib>  // defines __GLIBC__ on glibc
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "outrigger.h"

namespace outrigger {
namespace {

Napi::Value MallocTrim(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), malloc_trim(0) == 1);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

}  // namespace

void RegisterMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("mallocTrim", Napi::Function::New(env, MallocTrim, "mallocTrim"));
}

}  // namespace outrigger
