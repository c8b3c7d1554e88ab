// writev(fd, bufs, count): gathers bufs[0..count) (Uint8Arrays/Buffers, views allowed) into
// writev(2) calls of at most IOV_MAX entries on a non-blocking fd, looping until everything is
// written or the kernel says EAGAIN. Returns the exact byte count written (0 if EAGAIN at once);
// EINTR is retried; any other errno throws an Error with a Node-style `code`.
// SIGPIPE: Node ignores it process-wide, so a closed peer surfaces as EPIPE.
//
// writeRange(fd, buf, start, end): the same for one range of one Buffer, without the array and
// the view object per entry (the usual flush at a low request rate: one frame per connection).
#include <limits.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "outrigger.h"

namespace outrigger {
namespace {

constexpr size_t kMaxIov = IOV_MAX;  // 1024 on Linux

Napi::Value Writev(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntArg(info, 0, "fd", 0, INT_MAX));
  if (info.Length() < 2 || !info[1].IsArray()) throw Napi::TypeError::New(env, "bufs must be an array");
  napi_value arr = info[1];
  uint32_t length = 0;
  napi_get_array_length(env, arr, &length);
  uint32_t count = static_cast<uint32_t>(IntArg(info, 2, "count", 0, length));

  // One pass over the JS array; the vector is per thread and keeps its capacity between calls.
  thread_local std::vector<struct iovec> iov;
  iov.clear();
  for (uint32_t i = 0; i < count; i++) {
    napi_value v;
    napi_typedarray_type type;
    size_t len = 0;
    void* data = nullptr;
    // napi_get_typedarray_info fails (napi_invalid_arg) on anything but a TypedArray.
    if (napi_get_element(env, arr, i, &v) != napi_ok ||
        napi_get_typedarray_info(env, v, &type, &len, &data, nullptr, nullptr) != napi_ok || type != napi_uint8_array) {
      throw Napi::TypeError::New(env, "bufs[" + std::to_string(i) + "] must be a Buffer or Uint8Array");
    }
    if (len != 0) iov.push_back({data, len});  // empty buffers add nothing
  }

  double total = 0;
  size_t next = 0;  // first iovec not fully written; iov[next] is trimmed after a short write
  while (next < iov.size()) {
    size_t n = iov.size() - next < kMaxIov ? iov.size() - next : kMaxIov;
    ssize_t w;
    do {
      w = writev(fd, &iov[next], static_cast<int>(n));
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      throw ErrnoError(env, errno, "writev");
    }
    total += static_cast<double>(w);
    size_t left = static_cast<size_t>(w);
    while (next < iov.size() && left >= iov[next].iov_len) left -= iov[next++].iov_len;
    if (left > 0) {  // short write inside iov[next]; the next try normally returns EAGAIN
      iov[next].iov_base = static_cast<char*>(iov[next].iov_base) + left;
      iov[next].iov_len -= left;
    }
  }
  return Napi::Number::New(env, total);
}

Napi::Value WriteRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntArg(info, 0, "fd", 0, INT_MAX));
  napi_typedarray_type type;
  size_t len = 0;
  void* data = nullptr;
  if (info.Length() < 2 || napi_get_typedarray_info(env, info[1], &type, &len, &data, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array) {
    throw Napi::TypeError::New(env, "buf must be a Buffer or Uint8Array");
  }
  size_t start = static_cast<size_t>(IntArg(info, 2, "start", 0, static_cast<int64_t>(len)));
  size_t end = static_cast<size_t>(IntArg(info, 3, "end", static_cast<int64_t>(start), static_cast<int64_t>(len)));
  const char* p = static_cast<const char*>(data) + start;
  size_t left = end - start;
  double total = 0;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      throw ErrnoError(env, errno, "write");
    }
    total += static_cast<double>(w);
    p += w;
    left -= static_cast<size_t>(w);
  }
  return Napi::Number::New(env, total);
}

}  // namespace

void RegisterWritev(Napi::Env env, Napi::Object exports) {
  exports.Set("writev", Napi::Function::New(env, Writev, "writev"));
  exports.Set("writeRange", Napi::Function::New(env, WriteRange, "writeRange"));
}

}  // namespace outrigger
