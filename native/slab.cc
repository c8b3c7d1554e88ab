// Slab memory for the slab pool: allocSlab(size) returns a page-aligned, pre-faulted
// anonymous mmap() region exposed as an external ArrayBuffer (freed by its finalizer).
// If the runtime forbids external buffers (V8 sandbox), it falls back to a V8-allocated
// ArrayBuffer; slabMemoryKind() reports which one is in use ('mmap' or 'v8').
// Carving slabs into chunks is done in TypeScript (src/native/slab-pool.ts).
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "outrigger.h"

namespace outrigger {
namespace {

bool external_disallowed = false;  // sticky: set once the runtime refuses an external buffer

void FreeSlab(napi_env env, void* data, void* hint) {
  size_t size = static_cast<size_t>(reinterpret_cast<uintptr_t>(hint));
  munmap(data, size);
  int64_t ignored;
  napi_adjust_external_memory(env, -static_cast<int64_t>(size), &ignored);
}

Napi::Value AllocSlab(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // Upper bound keeps the size exact in a double and well under any sane slab.
  size_t size = static_cast<size_t>(IntArg(info, 0, "size", 1, int64_t{1} << 32));
  if (!external_disallowed) {
    void* mem = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (mem == MAP_FAILED) throw ErrnoError(env, errno, "mmap");
    napi_value ab;
    napi_status st = napi_create_external_arraybuffer(env, mem, size, FreeSlab,
                                                      reinterpret_cast<void*>(static_cast<uintptr_t>(size)), &ab);
    if (st == napi_ok) {
      int64_t ignored;
      napi_adjust_external_memory(env, static_cast<int64_t>(size), &ignored);
      return Napi::Value(env, ab);
    }
    munmap(mem, size);
    if (st != napi_no_external_buffers_allowed) NAPI_THROW(Napi::Error::New(env, "napi_create_external_arraybuffer failed"));
    external_disallowed = true;
  }
  return Napi::ArrayBuffer::New(env, size);
}

Napi::Value SlabMemoryKind(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), external_disallowed ? "v8" : "mmap");
}

Napi::Value PageSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(sysconf(_SC_PAGESIZE)));
}

}  // namespace

void RegisterSlab(Napi::Env env, Napi::Object exports) {
  exports.Set("allocSlab", Napi::Function::New(env, AllocSlab, "allocSlab"));
  exports.Set("slabMemoryKind", Napi::Function::New(env, SlabMemoryKind, "slabMemoryKind"));
  exports.Set("pageSize", Napi::Function::New(env, PageSize, "pageSize"));
}

}  // namespace outrigger
