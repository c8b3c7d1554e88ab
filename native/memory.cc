// Memory housekeeping for an idle process (issue 15, src/native/memory.ts):
// mallocTrim() -> malloc_trim(0): gives the free pages of every malloc arena back to the kernel
// (the top of each heap and the whole pages inside free chunks), true if any memory was
// released. On a C library without it (musl) it returns false and changes nothing.
// releaseExecutablePages() -> madvise(MADV_DONTNEED) on the read-only private mappings of the
// process's executable (the node binary: its code, read-only data, symbol tables): the clean
// file pages the start touched leave this process's page tables and stay in the page cache; a
// page touched again is mapped again by a minor fault, from the page cache. Only mappings
// without a written (copy-on-write, anonymous) page qualify, so no data is ever discarded.
// Returns the resident KiB those mappings held (0 where /proc is not readable).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>  // defines __GLIBC__ on glibc
#include <cstdint>
#include <string>
#include <vector>
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

struct Mapping {
  uintptr_t start = 0, end = 0;
  bool eligible = false;  // read-only, private, the executable
  long rssKiB = 0, anonKiB = 0;
};

Napi::Value ReleaseExecutablePages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return Napi::Number::New(env, 0);
  // As /proc/PID/maps names it (" (deleted)" included when the file was replaced since).
  const std::string want(exe, static_cast<size_t>(n));
  FILE* f = fopen("/proc/self/smaps", "re");
  if (f == nullptr) return Napi::Number::New(env, 0);
  std::vector<Mapping> maps;
  char line[4096];
  while (fgets(line, sizeof line, f) != nullptr) {
    unsigned long a, b;
    char perms[8];
    int pathAt = 0;
    if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &a, &b, perms, &pathAt) == 3 && pathAt > 0) {
      Mapping m;
      m.start = a;
      m.end = b;
      std::string p(line + pathAt);
      while (!p.empty() && (p.back() == '\n' || p.back() == ' ')) p.pop_back();
      m.eligible = p == want && perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p';
      maps.push_back(m);
      continue;
    }
    if (maps.empty()) continue;
    long kib;
    if (sscanf(line, "Rss: %ld kB", &kib) == 1) maps.back().rssKiB = kib;
    else if (sscanf(line, "Anonymous: %ld kB", &kib) == 1) maps.back().anonKiB = kib;
  }
  fclose(f);
  double released = 0;
  for (const Mapping& m : maps) {
    if (!m.eligible || m.anonKiB != 0 || m.rssKiB == 0) continue;
    if (madvise(reinterpret_cast<void*>(m.start), m.end - m.start, MADV_DONTNEED) == 0) released += m.rssKiB;
  }
  return Napi::Number::New(env, released);
}

}  // namespace

void RegisterMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("mallocTrim", Napi::Function::New(env, MallocTrim, "mallocTrim"));
  exports.Set("releaseExecutablePages", Napi::Function::New(env, ReleaseExecutablePages, "releaseExecutablePages"));
}

}  // namespace outrigger
