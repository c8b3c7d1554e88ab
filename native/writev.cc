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
//
// writevArgs(fd, count, b0, s0, e0, ... b3, s3, e3): the same for up to 4 ranges given as
// arguments, without the arrays (see WritevArgs).
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
double WriteAll(int fd, struct iovec* iov, size_t count, int* err) {
  double total = 0;
  size_t next = 0;  // first iovec not fully written; iov[next] is trimmed after a short write
  while (next < count) {
    size_t n = count - next < kMaxIov ? count - next : kMaxIov;
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
    while (next < count && left >= iov[next].iov_len) left -= iov[next++].iov_len;
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
  double total = WriteAll(fd, iov.data(), iov.size(), &err);
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

// A raw callback's range (a Uint8Array and two int32s making a valid range) into *out (len 0 when
// empty); false for anything else (the caller goes to its N-API twin).
bool RawRange(v8::Local<v8::Value> b, v8::Local<v8::Value> sv, v8::Local<v8::Value> ev, struct iovec* out) {
  if (!b->IsUint8Array() || !sv->IsInt32() || !ev->IsInt32()) return false;
  v8::Local<v8::Uint8Array> a = b.As<v8::Uint8Array>();
  int32_t st = sv.As<v8::Int32>()->Value();
  int32_t end = ev.As<v8::Int32>()->Value();
  if (st < 0 || end < st || static_cast<size_t>(end) > a->ByteLength()) return false;
  // As napi_get_typedarray_info finds it: the ArrayBuffer's data at the view's offset.
  *out = {end > st ? static_cast<char*>(a->Buffer()->Data()) + a->ByteOffset() + st : nullptr, static_cast<size_t>(end - st)};
  return true;
}

// writeRange's raw callback: the usual call (int32 fd, then a Uint8Array and two int32s making a
// valid range: RawRange); anything else goes to WriteRange, which accepts and refuses exactly as before.
void WriteRangeRaw(const v8::FunctionCallbackInfo<v8::Value>& info) {
  if (info.Length() != 4 || !info[0]->IsInt32()) {
    RawSlow(info);
    return;
  }
  int32_t fd = info[0].As<v8::Int32>()->Value();
  struct iovec r;
  if (fd < 0 || !RawRange(info[1], info[2], info[3], &r)) {
    RawSlow(info);
    return;
  }
  double total = 0;
  if (r.iov_len != 0) {
    total = SendAll(fd, static_cast<const char*>(r.iov_base), r.iov_len);
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

// The N-API callbacks' end: writes iov[0, n) and returns the count, or throws the errno.
napi_value NapiWriteAll(napi_env env, int fd, struct iovec* iov, size_t n) {
  int err = 0;
  double total = WriteAll(fd, iov, n, &err);
  if (err != 0) {
    ErrnoError(Napi::Env(env), err, "writev").ThrowAsJavaScriptException();
    return nullptr;
  }
  napi_value result;
  napi_create_double(env, total, &result);
  return result;
}

// Range i of an N-API callback (a Uint8Array and two numbers): into *out (len 0 when empty), or
// false with the TypeError or RangeError thrown.
bool NapiRange(napi_env env, napi_value b, napi_value sv, napi_value ev, int64_t i, struct iovec* out) {
  size_t len = 0;
  void* data = nullptr;
  int64_t st = 0, end = 0;
  if (!TypedArg(env, b, napi_uint8_array, &data, &len)) {
    napi_throw_type_error(env, nullptr, ("bufs[" + std::to_string(i) + "] must be a Buffer or Uint8Array").c_str());
    return false;
  }
  if (!FastInt(env, sv, 0, static_cast<int64_t>(len), &st) || !FastInt(env, ev, st, static_cast<int64_t>(len), &end)) {
    napi_throw_range_error(env, nullptr, ("range " + std::to_string(i) + " must satisfy 0 <= start <= end <= its buffer's length").c_str());
    return false;
  }
  *out = {static_cast<char*>(data) + st, static_cast<size_t>(end - st)};
  return true;
}

// The raw callbacks' end: writes iov[0, n) and returns the count, or throws the errno.
void RawWriteAll(const v8::FunctionCallbackInfo<v8::Value>& info, int fd, struct iovec* iov, size_t n) {
  int err = 0;
  double total = WriteAll(fd, iov, n, &err);
  if (err != 0) {
    RawThrowErrno(info, err, "writev");
    return;
  }
  SetCount(info, total);
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
    napi_value b, sv = nullptr, ev = nullptr;
    if (napi_get_element(env, argv[1], i, &b) != napi_ok) b = nullptr;
    if (b != nullptr) {
      napi_get_element(env, argv[2], i, &sv);
      napi_get_element(env, argv[3], i, &ev);
    }
    struct iovec r;
    if (!NapiRange(env, b, sv, ev, i, &r)) return nullptr;
    if (r.iov_len != 0) iov.push_back(r);  // empty ranges add nothing
  }
  return NapiWriteAll(env, static_cast<int>(fd), iov.data(), iov.size());
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
    struct iovec r;
    if (!RawRange(b, sv, ev, &r)) {
      RawSlow(info);
      return;
    }
    if (r.iov_len != 0) iov.push_back(r);  // empty ranges add nothing
  }
  RawWriteAll(info, fd, iov.data(), iov.size());
}

// writevArgs(fd, count, b0, s0, e0, b1, s1, e1, b2, s2, e2, b3, s3, e3): writevRanges for up to
// kArgRanges ranges passed as arguments (arguments past the count's are not read). A raw callback
// reads its arguments in place, where each element of an array costs V8's Object::Get (the API
// entry: a handle scope, a call-depth scope and the VM state around an element lookup, ~500
// instructions under callgrind; three per range in writevRanges). A connection's flush of 2-4
// gathered entries (several requests or responses on one connection in one iteration: pooled
// upstream connections at 2,000/s) takes this; more entries take writevRanges.
constexpr int32_t kArgRanges = 4;

// The N-API twin (the raw callback's slow path): the same errors as writevRanges'.
napi_value WritevArgs(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 2 + 3 * kArgRanges;
  napi_value argv[2 + 3 * kArgRanges];
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
  int64_t fd = 0, count = 0;
  if (argc < 2 || !FastInt(env, argv[0], 0, INT_MAX, &fd)) {
    napi_throw_range_error(env, nullptr, "fd must be a non-negative integer");
    return nullptr;
  }
  if (!FastInt(env, argv[1], 0, kArgRanges, &count) || argc < static_cast<size_t>(2 + 3 * count)) {
    napi_throw_range_error(env, nullptr, "writevArgs(fd, count, b0, s0, e0, ...): count must be an integer in [0, 4], with three arguments per range");
    return nullptr;
  }
  struct iovec iov[kArgRanges];
  size_t k = 0;
  for (int64_t i = 0; i < count; i++) {
    if (!NapiRange(env, argv[2 + 3 * i], argv[3 + 3 * i], argv[4 + 3 * i], i, &iov[k])) return nullptr;
    if (iov[k].iov_len != 0) k++;  // empty ranges add nothing
  }
  return NapiWriteAll(env, static_cast<int>(fd), iov, k);
}

// writevArgs' raw callback: int32 fd and count, then per range a Uint8Array and two int32s making
// a valid range; everything is checked before anything is written, anything else goes to
// WritevArgs (RawSlow).
void WritevArgsRaw(const v8::FunctionCallbackInfo<v8::Value>& info) {
  int argc = info.Length();
  if (argc < 2 || !info[0]->IsInt32() || !info[1]->IsInt32()) {
    RawSlow(info);
    return;
  }
  int32_t fd = info[0].As<v8::Int32>()->Value();
  int32_t count = info[1].As<v8::Int32>()->Value();
  if (fd < 0 || count < 0 || count > kArgRanges || argc < 2 + 3 * count) {
    RawSlow(info);
    return;
  }
  struct iovec iov[kArgRanges];
  size_t k = 0;
  for (int32_t i = 0; i < count; i++) {
    if (!RawRange(info[2 + 3 * i], info[3 + 3 * i], info[4 + 3 * i], &iov[k])) {
      RawSlow(info);
      return;
    }
    if (iov[k].iov_len != 0) k++;  // empty ranges add nothing
  }
  RawWriteAll(info, fd, iov, k);
}

}  // namespace

void RegisterWritev(Napi::Env env, Napi::Object exports) {
  exports.Set("writev", Napi::Function::New(env, Writev, "writev"));
  ExportRaw(env, exports, "writeRange", WriteRangeRaw, WriteRange);
  ExportRaw(env, exports, "writevRanges", WritevRangesRaw, WritevRanges);
  ExportRaw(env, exports, "writevArgs", WritevArgsRaw, WritevArgs);
}

}  // namespace outrigger
