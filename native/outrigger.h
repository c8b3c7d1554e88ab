// Declarations shared by the Outrigger native addon's translation units:
// one Register* function per primitive, and the errno -> JS Error helper.
#ifndef OUTRIGGER_NATIVE_H_
#define OUTRIGGER_NATIVE_H_

#include <napi.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>
#include <v8.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace outrigger {

// Builds a JS Error like Node's system errors: message "<syscall> <CODE>",
// plus properties code ("EPIPE"), errno (negative, as in Node) and syscall.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall);

// Reads argument i as an integer in [min, max]; throws a TypeError/RangeError otherwise.
int64_t IntArg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min, int64_t max);

void RegisterSlab(Napi::Env env, Napi::Object exports);
void RegisterWritev(Napi::Env env, Napi::Object exports);
void RegisterAffinity(Napi::Env env, Napi::Object exports);
void RegisterListen(Napi::Env env, Napi::Object exports);
void RegisterOrigDst(Napi::Env env, Napi::Object exports);
void RegisterFdPass(Napi::Env env, Napi::Object exports);
void RegisterSplice(Napi::Env env, Napi::Object exports);
void RegisterTlsTickets(Napi::Env env, Napi::Object exports);
void RegisterTlsConn(Napi::Env env, Napi::Object exports);
void RegisterMemory(Napi::Env env, Napi::Object exports);
void RegisterTlsClient(Napi::Env env, Napi::Object exports);
void RegisterRead(Napi::Env env, Napi::Object exports);
void RegisterH1Parse(Napi::Env env, Napi::Object exports);

// Prints the aborting thread and its native stack on SIGABRT (crash.cc); once per process.
void InstallCrashReport();

// The SSL* of a TlsConn (tls_conn.cc), null once freed; throws when v is not a TlsConn.
SSL* TlsConnSsl(const Napi::Value& v);

// The SSL_CTX* of a Node SecureContext (argument i is its `context`, or `context._external`); throws otherwise.
SSL_CTX* SslCtxArg(const Napi::CallbackInfo& info, size_t i);

/** Puts `item` in a slot of `slots` (a freed one first) and returns the slot's index, its id. */
template <typename T>
uint32_t TakeSlot(std::vector<T*>& slots, std::vector<uint32_t>& freeIds, T* item) {
  if (freeIds.empty()) {
    slots.push_back(item);
    return static_cast<uint32_t>(slots.size() - 1);
  }
  uint32_t id = freeIds.back();
  freeIds.pop_back();
  slots[id] = item;
  return id;
}

// A thread's libuv handles closed when its environment is torn down (a worker thread's exit).
// uv_close only queues the close: the callbacks run on a later loop turn, and a worker whose
// loop is closed with handles still closing aborts the process (Node's CheckedUvLoopClose).
// A synchronous cleanup hook cannot make Node run that turn; an asynchronous one keeps Node
// running the loop until it reports done. `run` closes the handles; a sentinel handle closed
// after them reports done from its close callback, which runs in the same turn as theirs.
struct HandleCleanup {
  void (*run)(void*);
  void* arg;
  uv_loop_t* loop;
  uv_idle_t sentinel;
  napi_async_cleanup_hook_handle hook;
};

inline void HandleCleanupDone(uv_handle_t* h) {
  HandleCleanup* c = static_cast<HandleCleanup*>(h->data);
  napi_remove_async_cleanup_hook(c->hook);
  delete c;
}

inline void HandleCleanupRun(napi_async_cleanup_hook_handle hook, void* arg) {
  HandleCleanup* c = static_cast<HandleCleanup*>(arg);
  c->hook = hook;
  c->run(c->arg);
  uv_idle_init(c->loop, &c->sentinel);
  c->sentinel.data = c;
  uv_close(reinterpret_cast<uv_handle_t*>(&c->sentinel), HandleCleanupDone);
}

/** Runs `run(arg)` when `env` is torn down, and waits for the handles it closed to finish closing. */
inline void AddHandleCleanup(napi_env env, uv_loop_t* loop, void (*run)(void*), void* arg) {
  HandleCleanup* c = new HandleCleanup{run, arg, loop, {}, nullptr};
  napi_add_async_cleanup_hook(env, HandleCleanupRun, c, nullptr);
}

// The data and length of v when it is a typed array of type `want` (false otherwise: no exception).
inline bool TypedArg(napi_env env, napi_value v, napi_typedarray_type want, void** data, size_t* len) {
  napi_typedarray_type type;
  return napi_get_typedarray_info(env, v, &type, len, data, nullptr, nullptr) == napi_ok && type == want;
}

// A napi_value is the address of a V8 handle slot, the same representation as a v8::Local
// (Node's N-API converts between them with a cast): these two convert without a call, for the
// places that talk to V8 directly (read.cc's batch call, tls_tickets.cc's External).
inline v8::Local<v8::Value> V8Value(napi_value nv) {
  v8::Local<v8::Value> v;
  static_assert(sizeof(v) == sizeof(nv), "napi_value is a v8::Local");
  std::memcpy(static_cast<void*>(&v), &nv, sizeof(nv));
  return v;
}
inline napi_value NapiValue(v8::Local<v8::Value> v) {
  napi_value nv;
  std::memcpy(static_cast<void*>(&nv), &v, sizeof(nv));
  return nv;
}

// Exports a plain N-API callback as `name` (no node-addon-api wrapper: for functions called per
// read, write or head, where the CallbackInfo object is measurable).
inline void ExportPlain(Napi::Env env, Napi::Object exports, const char* name, napi_callback cb) {
  napi_value fn;
  NAPI_THROW_IF_FAILED_VOID(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, nullptr, &fn));
  exports.Set(name, Napi::Value(env, fn));
}

// Raw V8 exports, for the functions called per read, write or head: a v8::FunctionCallback,
// which V8 calls with the arguments in place, instead of a plain N-API callback, which costs per
// call N-API's wrapper (its callback-info object, env bookkeeping, napi_get_cb_info, the status
// and last-error bookkeeping of every napi_* call that reads an argument): writeRange(fd, buf, 0,
// 0) under callgrind, 718 -> 389 instructions a call from the API-call builtin's entry on
// (docs/rpc-low-rate.md, session 13). The raw callback handles the usual call only; anything else
// (an argument it does not take as is) goes to `slow`, the N-API callback it replaced, with the
// same arguments (RawSlow): the same results and the same errors as before.
struct RawExport {
  napi_env env;
  v8::Global<v8::Function> slow;
};

// Exports `fast` as `name`, with `slow` as its N-API twin (RawSlow; null: `fast` never calls
// RawSlow); info.Data() is the RawExport.
void ExportRaw(Napi::Env env, Napi::Object exports, const char* name, v8::FunctionCallback fast, napi_callback slow);

// The most arguments RawSlow passes on (writevArgs takes 14).
constexpr int kRawSlowArgs = 16;

// Calls the export's N-API twin with info's arguments (up to kRawSlowArgs) and receiver, and returns what it
// returns; its exception, if any, is left to propagate.
void RawSlow(const v8::FunctionCallbackInfo<v8::Value>& info);

// Throws ErrnoError(err, syscall) from a raw callback.
void RawThrowErrno(const v8::FunctionCallbackInfo<v8::Value>& info, int err, const char* syscall);

// Socket IO without the file layer: recv/send/sendmsg go from the descriptor straight to the
// socket, where read/write/writev pass through the VFS (vfs_read/vfs_write, fdget_pos, the
// *_iter adapters): ~1 us less kernel time per proxied HTTP/1.1 request (bench/README.md,
// session 12, branch h1cpu). A descriptor that is not a socket (ENOTSOCK: a pipe, a file) gets
// the plain call. errno is the call's, as with read/write; MSG_NOSIGNAL as Node ignores SIGPIPE.
//
// On x86-64 the three socket calls are made with the syscall instruction itself (SockSys), not
// through libc's wrappers: recv, send and sendmsg are cancellation points, so in a multi-threaded
// process (Node always is) each wrapper switches the thread's cancellation type to asynchronous
// and back around the syscall, and reads errno's address through __errno_location on every call
// (perf at Bolt 2,000/s, session 14: 0.34 % and 0.24 % of all samples). Nothing in the process
// cancels threads. The result is the wrapper's: the count, or -1 with errno set (written only on
// failure, as libc does). Elsewhere, and with OUTRIGGER_LIBC_SOCKIO defined, the libc calls.
#if defined(__x86_64__) && defined(__linux__) && !defined(OUTRIGGER_LIBC_SOCKIO)
inline ssize_t SockSys(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
  long ret;
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  register long r9 __asm__("r9") = a6;
  // The kernel's x86-64 convention: number in rax, arguments in rdi rsi rdx r10 r8 r9; it
  // clobbers rcx and r11; the memory clobber orders the buffers' reads and writes around it.
  __asm__ __volatile__("syscall" : "=a"(ret) : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
  if (ret < 0 && ret > -4096) {
    errno = static_cast<int>(-ret);
    return -1;
  }
  return ret;
}
inline ssize_t SysRecv(int fd, void* p, size_t n) {
  return SockSys(SYS_recvfrom, fd, reinterpret_cast<long>(p), static_cast<long>(n), 0, 0, 0);
}
inline ssize_t SysSend(int fd, const void* p, size_t n, int flags) {
  return SockSys(SYS_sendto, fd, reinterpret_cast<long>(p), static_cast<long>(n), flags, 0, 0);
}
inline ssize_t SysSendmsg(int fd, const struct msghdr* m, int flags) {
  return SockSys(SYS_sendmsg, fd, reinterpret_cast<long>(m), flags, 0, 0, 0);
}
#else
inline ssize_t SysRecv(int fd, void* p, size_t n) {
  return recv(fd, p, n, 0);
}
inline ssize_t SysSend(int fd, const void* p, size_t n, int flags) {
  return send(fd, p, n, flags);
}
inline ssize_t SysSendmsg(int fd, const struct msghdr* m, int flags) {
  return sendmsg(fd, m, flags);
}
#endif
inline ssize_t SockRead(int fd, void* p, size_t n) {
  ssize_t r = SysRecv(fd, p, n);
  if (r < 0 && errno == ENOTSOCK) r = read(fd, p, n);
  return r;
}
inline ssize_t SockWrite(int fd, const void* p, size_t n) {
  ssize_t w = SysSend(fd, p, n, MSG_NOSIGNAL);
  if (w < 0 && errno == ENOTSOCK) w = write(fd, p, n);
  return w;
}
inline ssize_t SockWritev(int fd, struct iovec* iov, int n) {
  struct msghdr m = {};
  m.msg_iov = iov;
  m.msg_iovlen = static_cast<size_t>(n);
  ssize_t w = SysSendmsg(fd, &m, MSG_NOSIGNAL);
  if (w < 0 && errno == ENOTSOCK) w = writev(fd, iov, n);
  return w;
}

}  // namespace outrigger

#endif  // OUTRIGGER_NATIVE_H_
