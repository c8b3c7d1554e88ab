// writev(fd, bufs, count): gathers bufs[0..count) (Uint8Arrays/Buffers, views allowed) into
// sendmsg(2) calls (writev(2) on a non-socket, see SockWritev) of at most IOV_MAX entries on a
// non-blocking fd, looping until everything is
// written or the kernel says EAGAIN. Returns the exact byte count written (0 if EAGAIN at once);
// EINTR is retried; any other errno throws an Error with a Node-style `code`.
// SIGPIPE: Node ignores it process-wide, so a closed peer surfaces as EPIPE.
//
// writeRange(fd, buf, start, end): the same for one range of one Buffer, without the array and
// the view object per entry (the usual flush at a low request rate: one frame per connection).
// A raw V8 export (ExportRaw, outrigger.h): once per flush, per request at a low rate.
//
// writevRanges(fd, bufs, starts, ends, count): writev of bufs[i][starts[i], ends[i]) for i in
// [0, count), the three arrays as a connection gathers them: no view object per entry (a view is
// a ~70-byte heap object; at 2,000 Bolt requests/s they were a quarter of the bytes allocated per
// request, in the flushes that gathered two entries or more). A raw V8 export too (session 14).
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

// sendmsg(2) (writev(2) on a non-socket: SockWritev) of iov until all is written or EAGAIN
// (EINTR retried); the bytes written. Any other failure sets *err to its errno (what was
// written before it is not reported: the caller throws).
double WriteAll(int fd, std::vector<struct iovec>& iov, int* err) {
  double total = 0;
  size_t next = 0;  // first iovec not fully written; iov[next] is trimmed after a short write
  while (next < iov.size()) {
    size_t n = iov.size() - next < kMaxIov ? iov.size() - next : kMaxIov;
    ssize_t w;
    do {
      w = SockWritev(fd, &iov[next], static_cast<int>(n));
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) *err = errno;
      break;
    }
    total += static_cast<double>(w);
    size_t left = static_cast<size_t>(w);
    while (next < iov.size() && left >= iov[next].iov_len) left -= iov[next++].iov_len;
    if (left > 0) {  // short write inside iov[next]; the next try normally returns EAGAIN
      iov[next].iov_base = static_cast<char*>(iov[next].iov_base) + left;
      iov[next].iov_len -= left;
    }
  }
  return total;
}

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
    size_t len = 0;
    void* data = nullptr;
    if (napi_get_element(env, arr, i, &v) != napi_ok || !TypedArg(env, v, napi_uint8_array, &data, &len)) {
      throw Napi::TypeError::New(env, "bufs[" + std::to_string(i) + "] must be a Buffer or Uint8Array");
    }
    if (len != 0) iov.push_back({data, len});  // empty buffers add nothing
  }

  int err = 0;
  double total = WriteAll(fd, iov, &err);
  if (err != 0) throw ErrnoError(env, err, "writev");
  return Napi::Number::New(env, total);
}

// An integer in [min, max] from a JS number without the C++ wrapper layers (WriteRange runs
// once per flush); false when it is not one (the caller then lets IntArg build the error).
bool FastInt(napi_env env, napi_value v, int64_t min, int64_t max, int64_t* out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return false;
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max))) return false;  // NaN too
  int64_t i = static_cast<int64_t>(d);
  if (static_cast<double>(i) != d) return false;
  *out = i;
  return true;
}

// send(2) of p[0, left) until all is written or EAGAIN (EINTR retried): the bytes written, or -1
// with errno set when the kernel refused otherwise.
double SendAll(int fd, const char* p, size_t left) {
  double total = 0;
  while (left > 0) {
    ssize_t w = SockWrite(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return -1;
    }
    total += static_cast<double>(w);
    p += w;
    left -= static_cast<size_t>(w);
  }
  return total;
}

// A raw callback's byte count: a small integer when it fits (ReturnValue::Set(int32_t) stores a
// Smi in place; Set(double) calls Number::New, ~35 instructions).
inline void SetCount(const v8::FunctionCallbackInfo<v8::Value>& info, double total) {
  if (total <= 2147483647.0) info.GetReturnValue().Set(static_cast<int32_t>(total));
  else info.GetReturnValue().Set(total);
}

// writeRange's raw callback: the usual call (four int32 numbers and a Uint8Array, a valid range);
// anything else goes to WriteRange, which accepts and refuses exactly as before.
void WriteRangeRaw(const v8::FunctionCallbackInfo<v8::Value>& info) {
  if (info.Length() != 4 || !info[0]->IsInt32() || !info[1]->IsUint8Array() || !info[2]->IsInt32() || !info[3]->IsInt32()) {
    RawSlow(info);
    return;
  }
  int32_t fd = info[0].As<v8::Int32>()->Value();
  int32_t start = info[2].As<v8::Int32>()->Value();
  int32_t end = info[3].As<v8::Int32>()->Value();
  v8::Local<v8::Uint8Array> a = info[1].As<v8::Uint8Array>();
  size_t len = a->ByteLength();
  if (fd < 0 || start < 0 || end < start || static_cast<size_t>(end) > len) {
    RawSlow(info);
    return;
  }
  double total = 0;
  if (end > start) {
    // As napi_get_typedarray_info finds it: the ArrayBuffer's data at the view's offset.
    const char* p = static_cast<const char*>(a->Buffer()->Data()) + a->ByteOffset() + start;
    total = SendAll(fd, p, static_cast<size_t>(end - start));
    if (total < 0) {
      RawThrowErrno(info, errno, "write");
      return;
    }
  }
  SetCount(info, total);
}

// writeRange's N-API twin (the raw callback's slow path): four arguments read straight from the
// call, no CallbackInfo object.
napi_value WriteRange(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
  size_t len = 0;
  void* data = nullptr;
  int64_t fd = 0, start = 0, end = 0;
  bool ok = argc == 4 && FastInt(env, argv[0], 0, INT_MAX, &fd) && TypedArg(env, argv[1], napi_uint8_array, &data, &len) &&
            FastInt(env, argv[2], 0, static_cast<int64_t>(len), &start) &&
            FastInt(env, argv[3], start, static_cast<int64_t>(len), &end);
  if (!ok) {
    // The slow path only builds the error (the same messages as every other addon function).
    Napi::Env e(env);
    try {
      Napi::CallbackInfo info(env, cbinfo);
      IntArg(info, 0, "fd", 0, INT_MAX);
      if (info.Length() < 2 || !TypedArg(env, info[1], napi_uint8_array, &data, &len)) {
        throw Napi::TypeError::New(e, "buf must be a Buffer or Uint8Array");
      }
      int64_t s = IntArg(info, 2, "start", 0, static_cast<int64_t>(len));
      IntArg(info, 3, "end", s, static_cast<int64_t>(len));
      throw Napi::TypeError::New(e, "writeRange(fd, buf, start, end)");
    } catch (const Napi::Error& err) {
      err.ThrowAsJavaScriptException();
    }
    return nullptr;
  }
  double total = SendAll(static_cast<int>(fd), static_cast<const char*>(data) + start, static_cast<size_t>(end - start));
  if (total < 0) {
    ErrnoError(Napi::Env(env), errno, "write").ThrowAsJavaScriptException();
    return nullptr;
  }
  napi_value result;
  napi_create_double(env, total, &result);
  return result;
}

// writevRanges' N-API twin (the raw callback's slow path; until session 14 the export itself).
// Bad arguments throw the same errors as the fallback's (TypeError for a type, RangeError for a
// number out of range).
napi_value WritevRanges(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
  int64_t fd = 0, count = 0;
  if (argc < 5 || !FastInt(env, argv[0], 0, INT_MAX, &fd)) {
    napi_throw_range_error(env, nullptr, "fd must be a non-negative integer");
    return nullptr;
  }
  uint32_t lens[3] = {0, 0, 0};
  for (int a = 0; a < 3; a++) {
    bool isArray = false;
    if (napi_is_array(env, argv[1 + a], &isArray) != napi_ok || !isArray) {
      napi_throw_type_error(env, nullptr, "writevRanges(fd, bufs, starts, ends, count): bufs, starts and ends must be arrays");
      return nullptr;
    }
    napi_get_array_length(env, argv[1 + a], &lens[a]);
  }
  uint32_t most = lens[0] < lens[1] ? lens[0] : lens[1];
  if (lens[2] < most) most = lens[2];
  if (!FastInt(env, argv[4], 0, most, &count)) {
    napi_throw_range_error(env, nullptr, "count must be an integer no larger than any of the three arrays");
    return nullptr;
  }
  thread_local std::vector<struct iovec> iov;  // per thread, keeps its capacity between calls
  iov.clear();
  for (uint32_t i = 0; i < static_cast<uint32_t>(count); i++) {
    napi_value b, sv, ev;
    size_t len = 0;
    void* data = nullptr;
    int64_t st = 0, end = 0;
    if (napi_get_element(env, argv[1], i, &b) != napi_ok || !TypedArg(env, b, napi_uint8_array, &data, &len)) {
      napi_throw_type_error(env, nullptr, ("bufs[" + std::to_string(i) + "] must be a Buffer or Uint8Array").c_str());
      return nullptr;
    }
    if (napi_get_element(env, argv[2], i, &sv) != napi_ok || napi_get_element(env, argv[3], i, &ev) != napi_ok ||
        !FastInt(env, sv, 0, static_cast<int64_t>(len), &st) || !FastInt(env, ev, st, static_cast<int64_t>(len), &end)) {
      napi_throw_range_error(env, nullptr, ("range " + std::to_string(i) + " must satisfy 0 <= start <= end <= its buffer's length").c_str());
      return nullptr;
    }
    if (end > st) iov.push_back({static_cast<char*>(data) + st, static_cast<size_t>(end - st)});  // empty ranges add nothing
  }
  int err = 0;
  double total = WriteAll(static_cast<int>(fd), iov, &err);
  if (err != 0) {
    ErrnoError(Napi::Env(env), err, "writev").ThrowAsJavaScriptException();
    return nullptr;
  }
  napi_value result;
  napi_create_double(env, total, &result);
  return result;
}

// writevRanges' raw callback (once per flush of two entries or more: the request and response
// frames a connection gathers in one loop iteration). The usual call only: five arguments, an fd
// and a count that are int32s, three arrays whose first `count` entries are a Uint8Array and two
// int32s making a valid range. Everything is checked before anything is written, so anything else
// goes to WritevRanges untouched (RawSlow), which accepts and refuses exactly as before. V8's
// Array::Get is what napi_get_element calls, without N-API's status bookkeeping around each of the
// 3 x count reads; the result is a double set in place (no Number::New through N-API).
void WritevRangesRaw(const v8::FunctionCallbackInfo<v8::Value>& info) {
  if (info.Length() != 5 || !info[0]->IsInt32() || !info[1]->IsArray() || !info[2]->IsArray() || !info[3]->IsArray() || !info[4]->IsInt32()) {
    RawSlow(info);
    return;
  }
  int32_t fd = info[0].As<v8::Int32>()->Value();
  int32_t count = info[4].As<v8::Int32>()->Value();
  v8::Local<v8::Array> bufs = info[1].As<v8::Array>();
  v8::Local<v8::Array> starts = info[2].As<v8::Array>();
  v8::Local<v8::Array> ends = info[3].As<v8::Array>();
  if (fd < 0 || count < 0 || static_cast<uint32_t>(count) > bufs->Length() || static_cast<uint32_t>(count) > starts->Length() ||
      static_cast<uint32_t>(count) > ends->Length()) {
    RawSlow(info);
    return;
  }
  v8::Local<v8::Context> context = info.GetIsolate()->GetCurrentContext();
  thread_local std::vector<struct iovec> iov;  // per thread, keeps its capacity between calls
  iov.clear();
  for (uint32_t i = 0; i < static_cast<uint32_t>(count); i++) {
    v8::Local<v8::Value> b, sv, ev;
    if (!bufs->Get(context, i).ToLocal(&b) || !starts->Get(context, i).ToLocal(&sv) || !ends->Get(context, i).ToLocal(&ev)) {
      return;  // a getter threw: its exception propagates (as through napi_get_element)
    }
    if (!b->IsUint8Array() || !sv->IsInt32() || !ev->IsInt32()) {
      RawSlow(info);
      return;
    }
    v8::Local<v8::Uint8Array> a = b.As<v8::Uint8Array>();
    int32_t st = sv.As<v8::Int32>()->Value();
    int32_t end = ev.As<v8::Int32>()->Value();
    size_t len = a->ByteLength();
    if (st < 0 || end < st || static_cast<size_t>(end) > len) {
      RawSlow(info);
      return;
    }
    // As napi_get_typedarray_info finds it (see WriteRangeRaw); empty ranges add nothing.
    if (end > st) iov.push_back({static_cast<char*>(a->Buffer()->Data()) + a->ByteOffset() + st, static_cast<size_t>(end - st)});
  }
  int err = 0;
  double total = WriteAll(fd, iov, &err);
  if (err != 0) {
    RawThrowErrno(info, err, "writev");
    return;
  }
  SetCount(info, total);
}

}  // namespace

void RegisterWritev(Napi::Env env, Napi::Object exports) {
  exports.Set("writev", Napi::Function::New(env, Writev, "writev"));
  ExportRaw(env, exports, "writeRange", WriteRangeRaw, WriteRange);
  ExportRaw(env, exports, "writevRanges", WritevRangesRaw, WritevRanges);
}

}  // namespace outrigger
