// Entry point of the outrigger_native addon: registers every primitive's functions.
#include "outrigger.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
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
  return exports;
}

NODE_API_MODULE(outrigger_native, Init)
