// A report on stderr when the process aborts (SIGABRT): which thread, and the native stack of
// the aborting code, before the default action (the core dump or the exit by the signal).
// libuv and glibc abort without a word on some failures (a failed epoll_ctl, a write to an
// eventfd that fails, a mutex call that fails), and Node's own fatal paths print only their
// message; the stack says which one it was. Envoy prints its stack on fatal signals the same
// way. SIGSEGV is left alone: V8's WebAssembly trap handler owns it.
// Installed once per process at load; OUTRIGGER_CRASH_REPORT=0 leaves SIGABRT's action as it was.
#include <execinfo.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "outrigger.h"

namespace outrigger {
namespace {

std::atomic<bool> installed{false};

void Put(const char* s) {
  size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

void PutNumber(long v) {
  char buf[24];
  int i = sizeof(buf) - 1;
  buf[i] = '\0';
  bool neg = v < 0;
  unsigned long u = neg ? 0UL - static_cast<unsigned long>(v) : static_cast<unsigned long>(v);
  do {
    buf[--i] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0 && i > 1);
  if (neg) buf[--i] = '-';
  Put(buf + i);
}

void OnAbort(int sig) {
  // Async-signal-safe calls only, except backtrace_symbols_fd (it does not allocate) and
  // backtrace (its library was loaded at install time).
  char name[17] = {};
  prctl(PR_GET_NAME, reinterpret_cast<unsigned long>(name), 0, 0, 0);
  Put("\n[outrigger] fatal signal ");
  PutNumber(sig);
  Put(" (abort) in thread ");
  PutNumber(static_cast<long>(syscall(SYS_gettid)));
  Put(" '");
  Put(name);
  Put("' of process ");
  PutNumber(static_cast<long>(getpid()));
  Put("; native stack:\n");
  void* frames[64];
  int n = backtrace(frames, 64);
  backtrace_symbols_fd(frames, n, STDERR_FILENO);
  Put("[outrigger] end of stack\n");
  // SA_RESETHAND restored the default action: abort() raises the signal again and the process ends by it.
}

}  // namespace

void InstallCrashReport() {
  if (installed.exchange(true)) return;
  const char* off = std::getenv("OUTRIGGER_CRASH_REPORT");
  if (off != nullptr && std::strcmp(off, "0") == 0) return;
  struct sigaction old;
  if (sigaction(SIGABRT, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) return;  // someone else's handler: keep it
  void* warm[2];
  (void)backtrace(warm, 2);  // loads the unwinder now, not inside the handler
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnAbort;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGABRT, &sa, nullptr);
}

}  // namespace outrigger
