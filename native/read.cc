// Native read path for plain connections: the addon watches a dup of the socket's fd with its own
// libuv poll handle on this thread's loop and reads with one read(2) per readable event into the
// thread's read chunk, then calls one persistent JS callback. This skips libuv's stream read
// machinery and Node's StreamBase/onStreamRead path for every read.
//
//   readSetup(buffer, fn)        per thread: the chunk reads land in, and fn(id, n) called per read:
//                                n > 0 bytes are in buffer[0, n); n == 0 the peer's FIN; n < 0 a
//                                read error (-errno). After n <= 0 the watcher has stopped polling
//                                (the caller closes it with readClose).
//   readWatch(fd) -> id          dups fd (epoll keys registrations by fd, and libuv allows one
//                                watcher per fd: Node's own handle keeps the original for writes)
//                                and starts polling the dup for readability. -1 when fd or its dup
//                                is in the upper half of RLIMIT_NOFILE (dups take a quarter at most).
//   readPause(id, paused)        stops / restarts polling (back-pressure).
//   readClose(id)                stops polling and closes the dup at once, so that the socket is
//                                released when Node closes its own fd; the id is reused.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <vector>

#include "outrigger.h"

namespace outrigger {
namespace {

struct Thread;

struct Watcher {
  Thread* t = nullptr;
  uint32_t id = 0;
  int fd = -1;  // the dup
  uv_poll_t poll;
  bool active = false;  // polling
  bool closed = false;
};

struct Thread {
  napi_env env = nullptr;
  uv_loop_t* loop = nullptr;
  napi_ref cb = nullptr;
  napi_ref buf = nullptr;
  char* data = nullptr;
  size_t len = 0;
  napi_async_context async = nullptr;
  std::vector<Watcher*> watchers;
  std::vector<uint32_t> freeIds;
};

thread_local Thread* current = nullptr;

void OnClosed(uv_handle_t* h) {
  delete static_cast<Watcher*>(h->data);
}

void Close(Watcher* w) {
  if (w->closed) return;
  w->closed = true;
  // uv_close stops the poll and removes the fd from epoll before we close the dup.
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnClosed);
  if (w->fd >= 0) close(w->fd);
  w->fd = -1;
  Thread* t = w->t;
  t->watchers[w->id] = nullptr;
  t->freeIds.push_back(w->id);
}

void Deliver(Thread* t, uint32_t id, int n) {
  napi_env env = t->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn, recv, argv[2], result;
  napi_get_reference_value(env, t->cb, &fn);
  napi_get_global(env, &recv);  // the receiver must be an object
  napi_create_uint32(env, id, &argv[0]);  // small integers: no heap object
  napi_create_int32(env, n, &argv[1]);
  // napi_make_callback runs the microtask queue and process.nextTick callbacks afterwards, as
  // Node does after each of its own read callbacks.
  if (napi_make_callback(env, t->async, recv, fn, 2, argv, &result) == napi_pending_exception) {
    napi_value e;
    napi_get_and_clear_last_exception(env, &e);
    napi_fatal_exception(env, e);
  }
  napi_close_handle_scope(env, scope);
}

void OnPoll(uv_poll_t* h, int status, int) {
  Watcher* w = static_cast<Watcher*>(h->data);
  if (w->closed || !w->active) return;
  Thread* t = w->t;
  ssize_t r;
  do r = read(w->fd, t->data, t->len);
  while (r < 0 && errno == EINTR);
  int n = r < 0 ? -errno : static_cast<int>(r);
  if (n <= 0 && n != -EAGAIN && n != -EWOULDBLOCK) {
    w->active = false;
    uv_poll_stop(&w->poll);
  } else if (status < 0) {
    // libuv reports a socket error (POLLERR) as UV_EBADF and stops the handle; the read above
    // gets the real error (e.g. ECONNRESET) unless bytes come first: poll again for them.
    uv_poll_start(&w->poll, UV_READABLE, OnPoll);
  }
  if (n == -EAGAIN || n == -EWOULDBLOCK) return;
  Deliver(t, w->id, n);
}

void Cleanup(void* arg) {
  Thread* t = static_cast<Thread*>(arg);
  for (Watcher* w : t->watchers) {
    if (w != nullptr) Close(w);
  }
  if (t->cb != nullptr) napi_delete_reference(t->env, t->cb);
  if (t->buf != nullptr) napi_delete_reference(t->env, t->buf);
  if (t->async != nullptr) napi_async_destroy(t->env, t->async);
  if (current == t) current = nullptr;
  // t stays allocated: close callbacks still to run reach their watcher only.
}

Thread* Setup(Napi::Env env) {
  if (current != nullptr && current->env == env) return current;
  throw Napi::Error::New(env, "readSetup() was not called on this thread");
}

Watcher* WatcherArg(const Napi::CallbackInfo& info) {
  Thread* t = Setup(info.Env());
  int64_t id = IntArg(info, 0, "id", 0, UINT32_MAX);
  if (static_cast<size_t>(id) >= t->watchers.size() || t->watchers[id] == nullptr) {
    throw Napi::RangeError::New(info.Env(), "no native reader with that id");
  }
  return t->watchers[id];
}

Napi::Value ReadSetup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsBuffer() || !info[1].IsFunction()) {
    throw Napi::TypeError::New(env, "readSetup(buffer, callback)");
  }
  Thread* t = current != nullptr && current->env == env ? current : nullptr;
  if (t == nullptr) {
    t = new Thread();
    t->env = env;
    if (napi_get_uv_event_loop(env, &t->loop) != napi_ok) throw Napi::Error::New(env, "no event loop");
    napi_async_init(env, nullptr, Napi::String::New(env, "outrigger.read"), &t->async);
    napi_add_env_cleanup_hook(env, Cleanup, t);
    current = t;
  }
  if (t->cb != nullptr) napi_delete_reference(env, t->cb);
  if (t->buf != nullptr) napi_delete_reference(env, t->buf);
  Napi::Buffer<char> b = info[0].As<Napi::Buffer<char>>();
  t->data = b.Data();
  t->len = b.Length();
  napi_create_reference(env, b, 1, &t->buf);
  napi_create_reference(env, info[1], 1, &t->cb);
  return env.Undefined();
}

Napi::Value ReadWatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Thread* t = Setup(env);
  int fd = static_cast<int>(IntArg(info, 0, "fd", 0, INT32_MAX));
  // The dups must not eat the descriptors connections need: only while both numbers are in the
  // lower half of the limit (descriptors are numbered lowest-free first), so at most a quarter
  // of the limit goes to dups. Otherwise -1: Node reads this connection.
  rlimit rl;
  rlim_t half = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? rl.rlim_cur / 2 : INT32_MAX;
  if (static_cast<rlim_t>(fd) >= half) return Napi::Number::New(env, -1);
  int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) throw ErrnoError(env, errno, "dup");
  if (static_cast<rlim_t>(dup) >= half) {
    close(dup);
    return Napi::Number::New(env, -1);
  }
  Watcher* w = new Watcher();
  w->t = t;
  w->fd = dup;
  int r = uv_poll_init(t->loop, &w->poll, dup);
  if (r != 0) {
    close(dup);
    delete w;
    throw ErrnoError(env, -r, "uv_poll_init");
  }
  w->poll.data = w;
  if (t->freeIds.empty()) {
    w->id = static_cast<uint32_t>(t->watchers.size());
    t->watchers.push_back(w);
  } else {
    w->id = t->freeIds.back();
    t->freeIds.pop_back();
    t->watchers[w->id] = w;
  }
  w->active = true;
  uv_poll_start(&w->poll, UV_READABLE, OnPoll);
  return Napi::Number::New(env, w->id);
}

Napi::Value ReadPause(const Napi::CallbackInfo& info) {
  Watcher* w = WatcherArg(info);
  bool paused = info.Length() > 1 && info[1].ToBoolean().Value();
  if (paused && w->active) {
    w->active = false;
    uv_poll_stop(&w->poll);
  } else if (!paused && !w->active) {
    w->active = true;
    uv_poll_start(&w->poll, UV_READABLE, OnPoll);
  }
  return info.Env().Undefined();
}

Napi::Value ReadClose(const Napi::CallbackInfo& info) {
  Close(WatcherArg(info));
  return info.Env().Undefined();
}

}  // namespace

void RegisterRead(Napi::Env env, Napi::Object exports) {
  exports.Set("readSetup", Napi::Function::New(env, ReadSetup, "readSetup"));
  exports.Set("readWatch", Napi::Function::New(env, ReadWatch, "readWatch"));
  exports.Set("readPause", Napi::Function::New(env, ReadPause, "readPause"));
  exports.Set("readClose", Napi::Function::New(env, ReadClose, "readClose"));
}

}  // namespace outrigger
