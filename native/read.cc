// Native read path for plain connections: the addon watches a dup of the socket's fd with its own
// libuv poll handle on this thread's loop, and delivers the reads of one loop iteration in one JS
// call. This skips libuv's stream read machinery and Node's StreamBase/onStreamRead for every read,
// and the per-read JS entry (callback scope, microtask checkpoint) for all but one read per wakeup.
//
//   readSetup(buffer, state, fn, viaCallback, ownPollAfter, clock) per thread: the chunk reads land in,
//                                an Int32Array(3) describing the current read, and fn(id) called
//                                once per loop iteration in which watched fds became readable
//                                (from a uv_check_t, after the poll phase) with the first read
//                                already made. fn is entered with a plain call (see OnCheck) unless
//                                viaCallback is true (napi_make_callback, as before session 10).
//                                ownPollAfter: see owned fds below (0: never; default 16).
//                                clock (optional): a Float64Array(1) into which the time (ms since
//                                the epoch, as Date.now()) is written before each call of fn;
//                                returns true when it took one.
//   readNext() -> id             inside fn: reads the next ready fd. For fn's id and readNext's:
//                                the watcher's id, with state[0] where the bytes start in buffer,
//                                state[1] n (n > 0 bytes; 0 the peer's FIN; < 0 a read error as
//                                -errno: the watcher polls no more and the caller closes it with
//                                readClose) and state[2] 1 while more fds are pending (else fn is
//                                done). -1: no more this iteration. -2: the chunk is full: fn
//                                returns (flushing the writes that hold views of it), and the
//                                addon calls it again for the rest, from the chunk's beginning.
//                                Reads are made lazily, one per call, so a connection paused or
//                                closed by an earlier read's handler is not read in this batch.
//   readWatch(fd) -> id          dups fd (epoll keys registrations by fd, and libuv allows one
//                                watcher per fd: Node's own handle keeps the original for writes)
//                                and starts polling the dup for readability. -1 when fd or its dup
//                                is in the upper half of RLIMIT_NOFILE (dups take a quarter at most).
//   readPause(id, paused)        back-pressure. The poll is stopped lazily (at the next readable
//                                event while paused), so that a pause and resume without bytes in
//                                between costs no epoll_ctl.
//   readClose(id)                stops polling and closes the dup at once, so that the socket is
//                                released when Node closes its own fd; the id is reused.
//   readStats() -> number[]      this thread's counters: batches (JS calls), reads delivered,
//                                reads that found nothing (EAGAIN), chunks filled, poll stops,
//                                owned fds moved to their own uv_poll (OwnPoll).
//
// Owned fds (TLS connections accepted by the addon, native/listen.cc acceptStart, and upstream
// connections from connectTcp: no net.Socket holds them):
//   readWatch(fd, true) -> id    polls fd itself (no dup, no descriptor limit check); readClose
//                                closes it. fd must be non-blocking already. Owned fds are not
//                                uv_poll handles: they sit in one epoll set per thread, itself
//                                polled by one uv_poll handle, with the interest changed in place
//                                (EPOLL_CTL_ADD/MOD/DEL only when it changes). A uv_poll per fd
//                                cost 14 epoll_ctl and 2 ioctl calls per proxied TLS connection
//                                (uv_poll_init probes the fd with ADD+DEL and sets O_NONBLOCK,
//                                every uv_poll_start is DEL+ADD, uv_close DELs): now about 6.
//                                But the set costs an epoll_wait of its own in every wakeup in
//                                which one of its fds is ready (libuv reports the set's fd, then
//                                OnEpoll asks the set which): at one response per wakeup, as on
//                                a pooled upstream connection at a low rate, a syscall per read.
//                                So an owned fd that has delivered ownPollAfter reads (a long-
//                                lived one) leaves the set for a uv_poll handle of its own,
//                                which libuv's epoll_wait reports directly: a one-off ~5 syscalls
//                                (DEL from the set, uv_poll_init's ADD+DEL probe and FIONBIO, the
//                                ADD) instead of one per wakeup; short-lived fds (a TLS handshake
//                                and a request or two) stay in the set and never pay them.
//   readOnWritable(fn)           per thread: fn(id) is called (from the check phase, one call per
//                                watcher) when a watcher that asked with readWantWrite can write.
//   readWantWrite(id)            one-shot: adds writability to the watcher's poll until it is
//                                reported (a socket error reports it too: the write then fails).
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <v8.h>

#include <cerrno>
#include <vector>

#include "outrigger.h"

namespace outrigger {
namespace {

// A read into the chunk gets at least this much room; below it the batch flushes (-2) and the
// next read starts at the chunk's beginning. Small RPC reads share one chunk many times over,
// bulk reads still get 16 KiB or more.
constexpr size_t kMinRoom = 16 * 1024;

struct Thread;

struct Watcher {
  Thread* t = nullptr;
  uint32_t id = 0;
  int fd = -1;  // the dup
  uv_poll_t poll;
  bool polling = false;  // uv_poll started
  bool wanted = true;    // not paused, no FIN or error seen
  bool pending = false;  // in t->pending for this iteration's batch
  bool done = false;     // FIN or error read: never polled again
  bool closed = false;
  bool wantWrite = false;  // readWantWrite: writability is polled too, until reported
  bool owned = false;      // readWatch(fd, true): the fd itself (no dup), closed by Close
  bool direct = false;     // owned, left the set for its own uv_poll handle (poll) after ownPollAfter reads
  uint32_t reg = 0;        // owned, in the set: the interest registered in it (0: not in it)
  uint32_t reads = 0;      // owned, in the set: reads with bytes delivered (up to ownPollAfter)
};

struct Thread {
  napi_env env = nullptr;
  uv_loop_t* loop = nullptr;
  v8::Isolate* isolate = nullptr;
  // The batch function and its receiver (the state array), called with V8's API (see OnCheck).
  v8::Global<v8::Function> cb;
  v8::Global<v8::Object> recv;
  v8::Global<v8::Context> context;  // the env's context, readSetup's caller's
  napi_ref buf = nullptr;
  double* clock = nullptr;   // readSetup's 6th argument: the batch's time (ms since the epoch) goes here
  napi_ref clockRef = nullptr;
  napi_ref noop = nullptr;  // an empty function: napi_make_callback of it drains ticks and microtasks
  bool viaCallback = false;  // readSetup's 4th argument: every batch call through napi_make_callback
  char* data = nullptr;
  size_t len = 0;
  int32_t* state = nullptr;
  napi_async_context async = nullptr;
  uv_check_t check;
  bool checking = false;
  bool inBatch = false;
  std::vector<Watcher*> watchers;
  std::vector<uint32_t> freeIds;
  std::vector<Watcher*> pending;  // readable this iteration, in event order
  std::vector<Watcher*> writable;  // reported writable this iteration (readWantWrite)
  napi_ref wcb = nullptr;          // readOnWritable's function
  size_t next = 0;                // pending[next] is the one readNext() looks at
  size_t off = 0;                 // where the next read lands in the chunk
  double stats[6] = {0, 0, 0, 0, 0, 0};
  int ep = -1;                     // owned fds' epoll set (made with the first one), polled by epPoll
  uv_poll_t epPoll;
  size_t ownedOpen = 0;            // owned watchers open: epPoll keeps the loop alive while > 0
  uint32_t ownPollAfter = 16;      // reads after which an owned fd gets its own uv_poll (0: never)
  std::vector<Watcher*> dead;      // owned watchers closed, deleted after this iteration's check phase
};

enum Stat { kBatches, kReads, kEmpty, kFull, kStops, kOwnPolls };

thread_local Thread* current = nullptr;

void OnClosed(uv_handle_t* h) {
  delete static_cast<Watcher*>(h->data);
}

void OnPoll(uv_poll_t* h, int status, int events);

// An owned watcher still in the thread's epoll set (else it has a uv_poll handle, as a dup's).
bool InSet(const Watcher* w) {
  return w->owned && !w->direct;
}

// Owned watchers: the set's interest follows `polling` (readable) and `wantWrite` (writable).
// false when the kernel refused it (only the first ADD can fail in practice: ENOMEM, ENOSPC).
bool SetInterest(Watcher* w) {
  uint32_t want = (w->polling ? EPOLLIN : 0u) | (w->wantWrite ? EPOLLOUT : 0u);
  if (want == w->reg || w->fd < 0) return true;
  epoll_event ev;
  ev.events = want;
  ev.data.ptr = w;
  int op = want == 0 ? EPOLL_CTL_DEL : w->reg == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (epoll_ctl(w->t->ep, op, w->fd, &ev) != 0) return false;
  w->reg = want;
  return true;
}

// The fd's registration follows `polling` (readable) and `wantWrite` (writable): in the thread's
// set (owned, not moved) or on its own uv_poll handle, which stops when neither is wanted
// (epoll_ctl(DEL) at once: libuv invalidates the fd).
void Rearm(Watcher* w) {
  if (InSet(w)) {
    SetInterest(w);
    return;
  }
  int events = (w->polling ? UV_READABLE : 0) | (w->wantWrite ? UV_WRITABLE : 0);
  if (events != 0) uv_poll_start(&w->poll, events, OnPoll);
  else uv_poll_stop(&w->poll);
}

void StopPoll(Watcher* w) {
  if (!w->polling) return;
  w->polling = false;
  Rearm(w);  // the write interest stays, if any
  w->t->stats[kStops]++;
}

void StartCheck(Thread* t);

void Close(Watcher* w) {
  if (w->closed) return;
  w->closed = true;
  w->polling = false;
  Thread* t = w->t;
  if (w->owned && --t->ownedOpen == 0) uv_unref(reinterpret_cast<uv_handle_t*>(&t->epPoll));
  if (InSet(w)) {
    // Out of the set before the close (a dup, e.g. splice's, would keep the registration). The
    // watcher is deleted after this iteration's check phase, which skips its pending entries.
    w->wantWrite = false;
    SetInterest(w);
    t->dead.push_back(w);
    StartCheck(t);
  } else {
    // uv_close stops the poll and removes the fd from epoll before we close the dup. A pending
    // entry stays valid (the close callback runs after this iteration's check phase) and is skipped.
    uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnClosed);
  }
  if (w->fd >= 0) close(w->fd);
  w->fd = -1;
  t->watchers[w->id] = nullptr;
  t->freeIds.push_back(w->id);
}

void OnCheck(uv_check_t* h);

// The check handle is started once, with the first event, and never stopped (until Cleanup): a
// start and a stop per wakeup (uv_check_start, uv_check_stop: ~35 instructions) cost more than the
// call of OnCheck that finds nothing to do in an iteration without events (~15). It is unref'd:
// it never keeps the loop alive.
void StartCheck(Thread* t) {
  if (!t->checking) {
    t->checking = true;
    uv_check_start(&t->check, OnCheck);
  }
}

void StartPoll(Watcher* w) {
  if (w->polling || w->closed) return;
  w->polling = true;
  Rearm(w);
}

void OnEvents(Watcher* w, int status, int events);

void OnPoll(uv_poll_t* h, int status, int events) {
  OnEvents(static_cast<Watcher*>(h->data), status, events);
}

// The thread's epoll set of owned fds is readable: its events, as OnPoll's. An error or hang-up
// counts as both readable and writable (the read or the connect's result then reports it).
void OnEpoll(uv_poll_t* h, int status, int) {
  Thread* t = static_cast<Thread*>(h->data);
  if (status < 0 || t->ep < 0) return;
  epoll_event evs[64];
  int n;
  do n = epoll_wait(t->ep, evs, 64, 0);
  while (n < 0 && errno == EINTR);
  for (int i = 0; i < n; i++) {
    uint32_t e = evs[i].events;
    int events = ((e & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0 ? UV_READABLE : 0) | ((e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0 ? UV_WRITABLE : 0);
    OnEvents(static_cast<Watcher*>(evs[i].data.ptr), 0, events);  // closed ones left the set already
  }
}

void OnEvents(Watcher* w, int status, int events) {
  if (w->closed) return;
  if (w->wantWrite && (status < 0 || (events & UV_WRITABLE) != 0)) {
    // One-shot: the owner writes from the check phase and asks again if the kernel refuses.
    w->wantWrite = false;
    w->t->writable.push_back(w);
    StartCheck(w->t);
    if (status >= 0) {
      Rearm(w);
      if ((events & UV_READABLE) == 0) return;
    }
  }
  // libuv reports a socket error (POLLERR) as UV_EBADF and has stopped the handle; the read gets
  // the real error (e.g. ECONNRESET) unless bytes come first.
  if (status < 0) w->polling = false;
  if (!w->wanted) {
    // Paused (or done): the bytes stay in the kernel, which pushes back on the peer.
    StopPoll(w);
    return;
  }
  if (w->pending) return;
  Thread* t = w->t;
  w->pending = true;
  t->pending.push_back(w);
  StartCheck(t);
}

// A long-lived owned watcher leaves the set for its own uv_poll handle (see the header): after
// this, libuv's epoll_wait reports its fd, with no second epoll_wait on the set. Its interest
// moves with it. When libuv refuses the fd (it cannot in practice: the fd is open, not in the
// loop's epoll and not a libuv watcher) it stays in the set.
void OwnPoll(Watcher* w) {
  Thread* t = w->t;
  uint32_t reg = w->reg;
  if (reg != 0) {
    epoll_event ev{};  // (ignored by DEL; non-null for kernels before 2.6.9)
    if (epoll_ctl(t->ep, EPOLL_CTL_DEL, w->fd, &ev) != 0) {
      w->reads = 0;  // stays in the set; tried again after as many reads
      return;
    }
    w->reg = 0;
  }
  if (uv_poll_init(t->loop, &w->poll, w->fd) != 0) {
    SetInterest(w);  // back in the set, to try again after as many reads
    w->reads = 0;
    return;
  }
  w->poll.data = w;
  w->direct = true;
  t->stats[kOwnPolls]++;
  int events = (w->polling ? UV_READABLE : 0) | (w->wantWrite ? UV_WRITABLE : 0);
  if (events != 0) uv_poll_start(&w->poll, events, OnPoll);
}

// Reads the next pending watcher that is still wanted into the chunk: its id, with state[0] the
// offset, state[1] n and state[2] whether more entries are pending; -1 none left; -2 the chunk
// is full (the JS call returns, the entry stays pending for the next one).
int32_t Take(Thread* t) {
  while (t->next < t->pending.size()) {
    Watcher* w = t->pending[t->next];
    if (w->closed || !w->wanted) {
      // Closed or paused by an earlier read's handler in this batch: not read now.
      w->pending = false;
      t->next++;
      continue;
    }
    if (t->len - t->off < kMinRoom && t->off > 0) {
      t->off = 0;
      t->stats[kFull]++;
      t->state[2] = 1;
      return -2;
    }
    w->pending = false;
    t->next++;
    ssize_t r;
    do r = SockRead(w->fd, t->data + t->off, t->len - t->off);
    while (r < 0 && errno == EINTR);
    int n = r < 0 ? -errno : static_cast<int>(r);
    if (n == -EAGAIN || n == -EWOULDBLOCK) {
      t->stats[kEmpty]++;
      StartPoll(w);  // after an error report libuv stopped it; nothing to read after all
      continue;
    }
    if (n > 0) {
      StartPoll(w);  // (a no-op unless an error report stopped it: bytes came first)
      if (InSet(w) && t->ownPollAfter != 0 && ++w->reads >= t->ownPollAfter) OwnPoll(w);
    } else {
      // FIN or error: nothing more is read; the owner closes the watcher (until then a
      // readable event stops the poll, see OnPoll).
      w->wanted = false;
      w->done = true;
    }
    t->stats[kReads]++;
    t->state[0] = static_cast<int32_t>(t->off);
    t->state[1] = n;
    t->state[2] = t->next < t->pending.size() ? 1 : 0;
    // The next read starts 8-aligned after this one's bytes, which stay valid until the flush.
    if (n > 0) t->off = (t->off + static_cast<size_t>(n) + 7) & ~static_cast<size_t>(7);
    return static_cast<int32_t>(w->id);
  }
  t->state[2] = 0;
  return -1;
}

// The watchers reported writable in this iteration: one JS call each (rare: only after the
// kernel refused a write). A watcher closed since its report is skipped (it is deleted only in
// the close phase, after this one).
void Writables(Thread* t) {
  thread_local std::vector<Watcher*> list;  // keeps its capacity; calls never nest
  list.swap(t->writable);
  napi_env env = t->env;
  for (Watcher* w : list) {
    if (w->closed || t->wcb == nullptr) continue;
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) break;
    napi_value fn, recv, arg, result;
    napi_get_reference_value(env, t->wcb, &fn);
    napi_get_global(env, &recv);
    napi_create_int32(env, static_cast<int32_t>(w->id), &arg);
    napi_status st = napi_make_callback(env, t->async, recv, fn, 1, &arg, &result);
    if (st == napi_pending_exception) {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e);
      napi_fatal_exception(env, e);
    }
    napi_close_handle_scope(env, scope);
  }
  list.clear();
}

// Owned watchers closed since the last check phase: no list refers to them any more.
void FreeDead(Thread* t) {
  for (Watcher* w : t->dead) delete w;
  t->dead.clear();
}

// A MakeCallback's status: an exception it left pending goes to napi_fatal_exception (the
// process's 'uncaughtException', or its exit with the error). false unless napi_ok.
bool Reported(napi_env env, napi_status st) {
  if (st == napi_pending_exception) {
    napi_value e;
    napi_get_and_clear_last_exception(env, &e);
    napi_fatal_exception(env, e);
  }
  return st == napi_ok;
}

// The plain batch call, with V8's API rather than napi_call_function: its own work per call (its
// status bookkeeping and TryCatch wrapper, the reference lookups, the can-call-into-JS check
// through the context's embedder data) made ~710 instructions around each batch call ~550
// (callgrind, docs/rpc-low-rate.md, session 13). The same outcome: an exception goes to
// napi_fatal_exception, after the TryCatch is gone (as napi_call_function's caller reported it);
// nothing is called or reported while the isolate is terminating (a worker's terminate(), when
// napi_call_function refuses to call). false when it threw or did not run.
bool CallBatch(Thread* t, v8::Local<v8::Function> fn, v8::Local<v8::Object> recv, v8::Local<v8::Value> arg) {
  v8::Isolate* isolate = t->isolate;
  if (isolate->IsExecutionTerminating()) return false;
  v8::Local<v8::Value> exc;
  {
    v8::TryCatch tc(isolate);
    if (!fn->Call(t->context.Get(isolate), recv, 1, &arg).IsEmpty()) return true;
    if (!tc.HasCaught() || tc.HasTerminated()) return false;
    exc = tc.Exception();  // in OnCheck's handle scope: outlives tc
  }
  napi_fatal_exception(t->env, NapiValue(exc));
  return false;
}

// The batch's time for src/network/clock.ts (readSetup's clock array): ms since the epoch, whole,
// from the clock Date.now() reads (Node's: gettimeofday, CLOCK_REALTIME; here through the vDSO
// too). Written before each call, so that JS reads it as a double without Date.now()'s builtin
// call and heap number.
void WriteClock(Thread* t) {
  if (t->clock == nullptr) return;
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  t->clock[0] = static_cast<double>(static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000);
}

// Runs after the poll phase of an iteration in which watched fds became readable. The first
// read is made here and passed to the JS call, which takes the others with readNext() (so a
// wakeup with one readable socket makes no call from JS into the addon) until the chunk is full
// (-2): then the JS call returns (flushing its writes) and the next one starts at the chunk's
// beginning; a call takes at most one chunk's worth of reads.
//
// How JS is entered: a plain call (CallBatch: V8's Function::Call), not napi_make_callback.
// MakeCallback wraps the call in Node's callback scope (async context push and pop, idle flag,
// async hooks' before and after, a microtask checkpoint, the nextTick queue check, the WeakRef
// cleanup), which Node already does once per loop iteration anyway: its immediate check
// (Environment::CheckImmediate, a uv_check_t started at bootstrap and never stopped) opens and
// closes such a scope in every iteration, whether or not an immediate is queued
// (RunAndClearNativeImmediates). libuv runs the check handles in the order they were last started,
// most recent first, and keeps that order from one iteration to the next; this one is started with
// the first readable event (after Node's bootstrap started its own) and then stays started (see
// StartCheck), so Node's check runs after it, in the same check phase: the microtasks and process.nextTick callbacks a batch queued run
// there, before any timer, I/O callback or setImmediate callback, and before the loop polls again
// (test/unit/native-read-entry.test.ts). Between two calls of one iteration (the chunk was full)
// the queues are drained first with a MakeCallback of an empty function, so that what the first
// call queued still runs before the next reads are delivered, as with one MakeCallback per call.
// OUTRIGGER_NATIVE_READ_ENTRY=callback (viaCallback) enters every call through MakeCallback.
void OnCheck(uv_check_t* h) {
  Thread* t = static_cast<Thread*>(h->data);
  if (!t->writable.empty()) Writables(t);
  if (t->pending.empty() || t->cb.IsEmpty()) {
    for (Watcher* w : t->pending) w->pending = false;
    t->pending.clear();
    FreeDead(t);
    return;
  }
  napi_env env = t->env;
  v8::Isolate* isolate = t->isolate;
  t->next = 0;
  for (bool again = false;; again = true) {
    if (again && t->next >= t->pending.size()) break;  // the usual end: the call took them all
    // Once per wakeup, so on the stack: napi_open_handle_scope allocates a wrapper per call (a
    // napi_value is a v8::Local, made in the innermost V8 scope; tls_tickets.cc relies on it too).
    v8::HandleScope scope(isolate);
    // The receiver must be an object and is not used: the state array, already held
    // (napi_get_global's Context::Global() showed in profiles at one call per wakeup).
    v8::Local<v8::Object> recv = t->recv.Get(isolate);
    bool ok = true;
    if (again && !t->viaCallback) {
      // What the previous call queued runs before the next reads are made (see above); a throw
      // there leaves them unread (in the kernel) like a throw in the batch.
      napi_value fn, result;
      napi_get_reference_value(env, t->noop, &fn);
      ok = Reported(env, napi_make_callback(env, t->async, NapiValue(recv), fn, 0, nullptr, &result));
    }
    if (ok && !t->cb.IsEmpty()) {
      t->off = 0;
      int32_t first = Take(t);  // at the chunk's beginning: never -2
      if (first < 0) break;
      v8::Local<v8::Function> fn = t->cb.Get(isolate);
      v8::Local<v8::Value> arg = v8::Integer::New(isolate, first);  // a small integer: no heap object
      t->stats[kBatches]++;
      WriteClock(t);
      t->inBatch = true;
      if (t->viaCallback) {
        napi_value a = NapiValue(arg), result;
        ok = Reported(env, napi_make_callback(env, t->async, NapiValue(recv), NapiValue(fn), 1, &a, &result));
      } else {
        ok = CallBatch(t, fn, recv, arg);
      }
      t->inBatch = false;
    }
    if (!ok || t->cb.IsEmpty()) break;
  }
  // Entries JS did not take (an exception) stay unread in the kernel: the level-triggered poll
  // reports them again next iteration.
  for (size_t i = t->next; i < t->pending.size(); i++) t->pending[i]->pending = false;
  t->pending.clear();
  t->next = 0;
  FreeDead(t);
}

napi_value Noop(napi_env, napi_callback_info) {
  return nullptr;
}

// Inside the batch, once per further read: a raw callback (ExportRaw, outrigger.h) that takes no
// arguments and has no slow path (no N-API twin).
void ReadNextRaw(const v8::FunctionCallbackInfo<v8::Value>& info) {
  Thread* t = current;
  info.GetReturnValue().Set(t != nullptr && t->isolate == info.GetIsolate() && t->inBatch ? Take(t) : -1);  // a small integer
}

void Cleanup(void* arg) {
  Thread* t = static_cast<Thread*>(arg);
  for (Watcher* w : t->watchers) {
    if (w != nullptr) Close(w);
  }
  t->pending.clear();
  t->writable.clear();
  FreeDead(t);
  if (t->ep >= 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&t->epPoll), nullptr);  // before its fd goes
    close(t->ep);
    t->ep = -1;
  }
  if (t->wcb != nullptr) napi_delete_reference(t->env, t->wcb);
  t->wcb = nullptr;
  // The loop must close with no open handle (a worker's loop is closed after this hook).
  uv_close(reinterpret_cast<uv_handle_t*>(&t->check), nullptr);
  t->checking = false;
  t->cb.Reset();
  t->recv.Reset();
  t->context.Reset();
  if (t->buf != nullptr) napi_delete_reference(t->env, t->buf);
  if (t->clockRef != nullptr) napi_delete_reference(t->env, t->clockRef);
  if (t->noop != nullptr) napi_delete_reference(t->env, t->noop);
  t->buf = t->clockRef = t->noop = nullptr;
  t->clock = nullptr;
  if (t->async != nullptr) napi_async_destroy(t->env, t->async);
  if (current == t) current = nullptr;
  // t stays allocated: the close callbacks still to run reach their watcher only, and the check
  // handle (closing) is part of t.
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
  if (info.Length() < 3 || !info[0].IsBuffer() || !info[1].IsTypedArray() || !info[2].IsFunction() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array || info[1].As<Napi::TypedArray>().ElementLength() < 3) {
    throw Napi::TypeError::New(env, "readSetup(buffer, Int32Array(3), callback[, viaCallback[, ownPollAfter[, Float64Array(1)]]])");
  }
  bool withClock = info.Length() > 5 && !info[5].IsUndefined();
  if (withClock && (!info[5].IsTypedArray() || info[5].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
                    info[5].As<Napi::TypedArray>().ElementLength() < 1)) {
    throw Napi::TypeError::New(env, "readSetup: the clock must be a Float64Array(1)");
  }
  Thread* t = current != nullptr && current->env == env ? current : nullptr;
  if (t == nullptr) {
    t = new Thread();
    t->env = env;
    t->isolate = v8::Isolate::GetCurrent();
    if (napi_get_uv_event_loop(env, &t->loop) != napi_ok) throw Napi::Error::New(env, "no event loop");
    uv_check_init(t->loop, &t->check);
    t->check.data = t;
    // The check handle runs only in iterations with reads to deliver; it never keeps the loop alive.
    uv_unref(reinterpret_cast<uv_handle_t*>(&t->check));
    napi_async_init(env, nullptr, Napi::String::New(env, "outrigger.read"), &t->async);
    napi_value noop;
    NAPI_THROW_IF_FAILED(env, napi_create_function(env, "outriggerReadDrain", NAPI_AUTO_LENGTH, Noop, nullptr, &noop), Napi::Value());
    napi_create_reference(env, noop, 1, &t->noop);
    AddHandleCleanup(env, t->loop, Cleanup, t);
    current = t;
  }
  if (t->inBatch) throw Napi::Error::New(env, "readSetup() inside a read batch");
  if (t->buf != nullptr) napi_delete_reference(env, t->buf);
  if (t->clockRef != nullptr) napi_delete_reference(env, t->clockRef);
  t->buf = t->clockRef = nullptr;
  t->clock = nullptr;
  Napi::Buffer<char> b = info[0].As<Napi::Buffer<char>>();
  Napi::Int32Array s = info[1].As<Napi::Int32Array>();
  t->data = b.Data();
  t->len = b.Length();
  t->state = s.Data();  // (off the V8 heap from here on: napi_get_typedarray_info moved it)
  napi_create_reference(env, b, 1, &t->buf);
  v8::Isolate* isolate = t->isolate;
  t->context.Reset(isolate, isolate->GetCurrentContext());
  t->recv.Reset(isolate, V8Value(info[1]).As<v8::Object>());
  t->cb.Reset(isolate, V8Value(info[2]).As<v8::Function>());
  if (withClock) {
    Napi::Float64Array c = info[5].As<Napi::Float64Array>();
    t->clock = c.Data();
    napi_create_reference(env, c, 1, &t->clockRef);
  }
  t->viaCallback = info.Length() > 3 && info[3].ToBoolean().Value();
  if (info.Length() > 4 && info[4].IsNumber()) t->ownPollAfter = static_cast<uint32_t>(IntArg(info, 4, "ownPollAfter", 0, UINT32_MAX));
  return Napi::Boolean::New(env, withClock);  // (undefined from builds before the clock)
}

// The thread's epoll set of owned fds and its poll handle (once per thread); an errno on failure.
int EpollSetup(Thread* t) {
  if (t->ep >= 0) return 0;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return errno;
  int r = uv_poll_init(t->loop, &t->epPoll, ep);
  if (r != 0) {
    close(ep);
    return -r;
  }
  t->ep = ep;
  t->epPoll.data = t;
  uv_poll_start(&t->epPoll, UV_READABLE, OnEpoll);
  uv_unref(reinterpret_cast<uv_handle_t*>(&t->epPoll));  // ref'd while owned watchers are open
  return 0;
}

// A watcher polling fd (a dup with its own uv_poll, or an owned fd in the thread's epoll set):
// closed by Close(). Throws (closing fd) when libuv or the kernel refuses it.
uint32_t Watch(Thread* t, int fd, bool owned) {
  Watcher* w = new Watcher();
  w->t = t;
  w->fd = fd;
  w->owned = owned;
  int err = 0;
  const char* step = "uv_poll_init";
  if (owned) {
    step = "epoll";
    err = EpollSetup(t);
    if (err == 0) {
      w->polling = true;
      if (!SetInterest(w)) err = errno;
    }
  } else {
    int r = uv_poll_init(t->loop, &w->poll, fd);
    if (r != 0) err = -r;
    w->poll.data = w;
  }
  if (err != 0) {
    close(fd);
    delete w;
    throw ErrnoError(t->env, err, step);
  }
  w->id = TakeSlot(t->watchers, t->freeIds, w);
  if (owned) {
    if (t->ownedOpen++ == 0) uv_ref(reinterpret_cast<uv_handle_t*>(&t->epPoll));
  } else {
    StartPoll(w);
  }
  return w->id;
}

Napi::Value ReadWatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Thread* t = Setup(env);
  int fd = static_cast<int>(IntArg(info, 0, "fd", 0, INT32_MAX));
  if (info.Length() > 1 && info[1].ToBoolean().Value()) return Napi::Number::New(env, Watch(t, fd, true));
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
  return Napi::Number::New(env, Watch(t, dup, false));
}

Napi::Value ReadPause(const Napi::CallbackInfo& info) {
  Watcher* w = WatcherArg(info);
  bool paused = info.Length() > 1 && info[1].ToBoolean().Value();
  if (paused) {
    w->wanted = false;  // the poll stops at the next readable event (OnPoll)
  } else if (!w->wanted && !w->done) {
    w->wanted = true;
    StartPoll(w);
  }
  return info.Env().Undefined();
}

Napi::Value ReadOnWritable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Thread* t = Setup(env);
  if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(env, "readOnWritable(callback)");
  if (t->wcb != nullptr) napi_delete_reference(env, t->wcb);
  napi_create_reference(env, info[0], 1, &t->wcb);
  return env.Undefined();
}

Napi::Value ReadWantWrite(const Napi::CallbackInfo& info) {
  Watcher* w = WatcherArg(info);
  if (!w->wantWrite && !w->closed) {
    w->wantWrite = true;
    Rearm(w);
  }
  return info.Env().Undefined();
}

Napi::Value ReadClose(const Napi::CallbackInfo& info) {
  Close(WatcherArg(info));
  return info.Env().Undefined();
}

Napi::Value ReadStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array a = Napi::Array::New(env, 6);
  Thread* t = current != nullptr && current->env == env ? current : nullptr;
  for (uint32_t i = 0; i < 6; i++) a.Set(i, Napi::Number::New(env, t != nullptr ? t->stats[i] : 0));
  return a;
}

}  // namespace

void RegisterRead(Napi::Env env, Napi::Object exports) {
  exports.Set("readSetup", Napi::Function::New(env, ReadSetup, "readSetup"));
  ExportRaw(env, exports, "readNext", ReadNextRaw, nullptr);
  exports.Set("readWatch", Napi::Function::New(env, ReadWatch, "readWatch"));
  exports.Set("readPause", Napi::Function::New(env, ReadPause, "readPause"));
  exports.Set("readClose", Napi::Function::New(env, ReadClose, "readClose"));
  exports.Set("readStats", Napi::Function::New(env, ReadStats, "readStats"));
  exports.Set("readOnWritable", Napi::Function::New(env, ReadOnWritable, "readOnWritable"));
  exports.Set("readWantWrite", Napi::Function::New(env, ReadWantWrite, "readWantWrite"));
}

}  // namespace outrigger
