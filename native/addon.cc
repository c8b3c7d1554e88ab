// Entry point of the outrigger_native addon: registers every primitive's functions.
#include <uv.h>

#include "outrigger.h"

namespace {

// singlePoll(): makes this thread's event loop poll once per wakeup. Node configures every
// loop with UV_METRICS_IDLE_TIME (for performance.eventLoopUtilization()), and libuv then
// polls twice whenever it is about to sleep: epoll_pwait with timeout 0 first, to time the
// idle period exactly, then again with the real timeout. At a low request rate every read
// wakes the loop, so that is one extra syscall per wakeup. libuv offers no way to unset the
// option; its private per-loop fields start with the flags word holding it (libuv >= 1.39,
// uv-common.h), and every use of the flag checks it before touching the metrics. The idle
// time stops growing (eventLoopUtilization() then reports 1). Returns whether it was set.
napi_value SinglePoll(napi_env env, napi_callback_info) {
  uv_loop_t* loop = nullptr;
  bool was = false;
  if (napi_get_uv_event_loop(env, &loop) == napi_ok && loop != nullptr && loop->internal_fields != nullptr) {
    unsigned int* flags = static_cast<unsigned int*>(loop->internal_fields);
    was = (*flags & UV_METRICS_IDLE_TIME) != 0;
    *flags &= ~static_cast<unsigned int>(UV_METRICS_IDLE_TIME);
  }
  napi_value result;
  napi_get_boolean(env, was, &result);
  return result;
}

}  // namespace

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  outrigger::InstallCrashReport();
  outrigger::RegisterSlab(env, exports);
  outrigger::RegisterWritev(env, exports);
  outrigger::RegisterAffinity(env, exports);
  outrigger::RegisterListen(env, exports);
  outrigger::RegisterOrigDst(env, exports);
  outrigger::RegisterFdPass(env, exports);
  outrigger::RegisterTlsTickets(env, exports);
  outrigger::RegisterTlsConn(env, exports);
  outrigger::RegisterTlsClient(env, exports);
  outrigger::RegisterSplice(env, exports);
  outrigger::RegisterMemory(env, exports);
  outrigger::RegisterRead(env, exports);
  outrigger::RegisterH1Parse(env, exports);
  outrigger::ExportPlain(env, exports, "singlePoll", SinglePoll);
  return exports;
}

NODE_API_MODULE(outrigger_native, Init)
