// CPU affinity of the CALLING thread (e.g. a worker_threads Worker):
// pinThread(cpu) -> true if the thread is now bound to that one CPU, false if impossible
// (cpu >= number of configured CPUs, or the kernel refuses it, e.g. cpu outside the cpuset);
// getThreadAffinity() -> sorted list of CPUs the calling thread may run on.
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>

#include "outrigger.h"

namespace outrigger {
namespace {

Napi::Value PinThread(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t cpu = IntArg(info, 0, "cpu", 0, INT32_MAX);
  long nprocs = sysconf(_SC_NPROCESSORS_CONF);
  if (cpu >= nprocs || cpu >= CPU_SETSIZE) return Napi::Boolean::New(env, false);
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<int>(cpu), &set);
  int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  if (rc == EINVAL) return Napi::Boolean::New(env, false);  // CPU not usable by this process
  if (rc != 0) throw ErrnoError(env, rc, "pthread_setaffinity_np");
  return Napi::Boolean::New(env, true);
}

Napi::Value GetThreadAffinity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  cpu_set_t set;
  CPU_ZERO(&set);
  int rc = pthread_getaffinity_np(pthread_self(), sizeof(set), &set);
  if (rc != 0) throw ErrnoError(env, rc, "pthread_getaffinity_np");
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (CPU_ISSET(cpu, &set)) out.Set(n++, Napi::Number::New(env, cpu));
  }
  return out;
}

}  // namespace

void RegisterAffinity(Napi::Env env, Napi::Object exports) {
  exports.Set("pinThread", Napi::Function::New(env, PinThread, "pinThread"));
  exports.Set("getThreadAffinity", Napi::Function::New(env, GetThreadAffinity, "getThreadAffinity"));
}

}  // namespace outrigger
