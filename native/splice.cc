// Kernel-side TCP forwarding for a connection pair (tcp_proxy with no filter reading the bytes):
// socket A -> pipe -> socket B and B -> pipe -> A with splice(2), driven by libuv poll handles
// on this thread's loop, so the bytes never reach user space.
//
//   spliceSetCallback(fn)                 fn(id, side, errno) runs once when a pair stops by itself:
//                                         errno 0 = both directions got their FIN and forwarded it
//                                         (shutdown(SHUT_WR) once the pipe was empty); otherwise the
//                                         errno of the failed splice/shutdown and the side (0 = A,
//                                         1 = B) whose socket failed. The caller then calls spliceStop.
//   spliceStart(fdA, fdB, state, counters, slots, pipeSize) -> id
//                                         dups both fds (the JS sockets keep theirs; they must not read
//                                         or write while the pair runs), makes one non-blocking pipe per
//                                         direction (F_SETPIPE_SZ pipeSize, best effort) and starts
//                                         polling. state (Float64Array, >= 6 slots) is written here:
//                                         [0] read from A, [1] written to B, [2] read from B,
//                                         [3] written to A, [4] time of the last byte (ms since the
//                                         epoch), [5] direction of the last bytes read (1 A->B, 2 B->A).
//                                         counters[slots[0..1]] grow by the bytes read from A,
//                                         counters[slots[2..3]] by the bytes read from B, and
//                                         counters[slots[4]] / [slots[5]] by one each time reading A / B
//                                         stops because its pipe and its destination are full
//                                         (back-pressure, like a watermark pause) (slot -1: none).
//   spliceStop(id) -> [toB, toA]          stops polling, closes the dups and the pipes, and returns the
//                                         bytes still in each pipe (Buffer, or null when empty) so the
//                                         caller can write them through its own path.
//
// Flow control: a direction reads only while its pipe has room; when the destination socket does
// not take the pipe's bytes, the pipe stays full and the source is not read (its kernel receive
// buffer fills and TCP pushes back). Memory per pair is bounded by the two pipes.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  // splice, pipe2, F_SETPIPE_SZ
#endif
#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <climits>
#include <vector>

#include "outrigger.h"

namespace outrigger {
namespace {

constexpr unsigned kSpliceFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
constexpr size_t kStateSlots = 6;
enum Slot { kReadA = 0, kWrittenB = 1, kReadB = 2, kWrittenA = 3, kActivity = 4, kLastDir = 5 };
// Upper bound of splice rounds per poll event and direction, so one busy pair cannot starve the
// loop: 64 rounds of a 64 KiB pipe move at most 4 MiB, the most a socket's send buffer holds here
// (net.ipv4.tcp_wmem), so a slow destination is normally seen full (a short write or EAGAIN)
// within one event rather than waited for as merely "not writable yet".
constexpr int kRounds = 64;

struct Thread;

struct Dir {
  int src = -1, dst = -1;  // the dup'd socket fds
  int pr = -1, pw = -1;    // the pipe's read and write ends
  size_t pending = 0;      // bytes in the pipe
  bool eof = false;        // the source sent its FIN
  bool shut = false;       // ... and it was forwarded
  bool inBlocked = false;  // the pipe took no more though it is not full by bytes (slots used up)
  bool outBlocked = false; // the destination did not take all of the pipe's bytes (its send buffer is full)
  bool paused = false;     // not reading the source: pipe full and destination full
  int srcSide = 0;
  Slot readSlot = kReadA, writeSlot = kWrittenB;
  double* count[2] = {nullptr, nullptr};
  double* pausedCount = nullptr;  // grows each time reading the source stops for back-pressure
};

struct Pair {
  Thread* t = nullptr;
  uint32_t id = 0;
  int fd[2] = {-1, -1};
  uv_poll_t poll[2];
  int events[2] = {0, 0};
  int polls = 0;  // initialised poll handles (closed before the pair is freed)
  Dir dir[2];     // 0: A -> B, 1: B -> A
  double* state = nullptr;
  Napi::Reference<Napi::Float64Array> stateRef, countersRef;  // keep the arrays (and pointers) alive
  size_t cap = 0;
  bool stopped = false;
};

// Per JS thread (main or a worker): its loop, the callback, the pairs by id.
struct Thread {
  napi_env env = nullptr;
  uv_loop_t* loop = nullptr;
  Napi::FunctionReference cb;
  napi_async_context async = nullptr;
  std::vector<Pair*> pairs;
  std::vector<uint32_t> freeIds;
};

thread_local Thread* current = nullptr;

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

double NowMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return static_cast<double>(ts.tv_sec) * 1000.0 + static_cast<double>(ts.tv_nsec / 1000000);
}

void OnPollClosed(uv_handle_t* h) {
  Pair* p = static_cast<Pair*>(h->data);
  if (--p->polls == 0) delete p;
}

// Stops polling and releases fds and pipes; the Pair is freed once libuv has closed its handles.
void Release(Pair* p) {
  for (int s = 0; s < 2; s++) {
    if (s < p->polls) uv_close(reinterpret_cast<uv_handle_t*>(&p->poll[s]), OnPollClosed);
  }
  // uv_close has already removed the fds from the loop's epoll set: closing them now is safe.
  for (Dir& d : p->dir) {
    CloseFd(d.pr);
    CloseFd(d.pw);
  }
  CloseFd(p->fd[0]);
  CloseFd(p->fd[1]);
  p->stateRef.Reset();
  p->countersRef.Reset();
  Thread* t = p->t;
  t->pairs[p->id] = nullptr;
  t->freeIds.push_back(p->id);
  if (p->polls == 0) delete p;
}

void OnPoll(uv_poll_t* h, int status, int events);

void Arm(Pair* p) {
  for (Dir& d : p->dir) {
    bool paused = !d.eof && d.outBlocked && (d.inBlocked || d.pending >= p->cap);
    if (paused && !d.paused && d.pausedCount != nullptr) *d.pausedCount += 1;
    d.paused = paused;
  }
  for (int s = 0; s < 2; s++) {
    const Dir& out = p->dir[s];      // this side is its source
    const Dir& in = p->dir[1 - s];   // this side is its destination
    int ev = 0;
    if (!out.eof && !out.inBlocked && out.pending < p->cap) ev |= UV_READABLE;
    if (in.pending > 0) ev |= UV_WRITABLE;
    if (ev == p->events[s]) continue;
    p->events[s] = ev;
    if (ev != 0) uv_poll_start(&p->poll[s], ev, OnPoll);
    else uv_poll_stop(&p->poll[s]);
  }
}

// Moves what it can in one direction. Returns 0, or an errno with *errSide set.
int Pump(Pair* p, Dir& d, int* errSide) {
  double* st = p->state;
  bool drained = false;  // the source gave less than asked: do not ask again in this event
  for (int round = 0; round < kRounds; round++) {
    bool moved = false;
    if (d.pending > 0) {
      ssize_t n = splice(d.pr, nullptr, d.dst, nullptr, d.pending, kSpliceFlags);
      if (n > 0) {
        // A short write: the destination's send buffer filled up (like a partial writev on the JS path).
        d.outBlocked = static_cast<size_t>(n) < d.pending;
        d.pending -= static_cast<size_t>(n);
        st[d.writeSlot] += static_cast<double>(n);
        d.inBlocked = false;
        moved = true;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno == EAGAIN) {
        d.outBlocked = true;
      } else if (n < 0) {
        *errSide = 1 - d.srcSide;
        return errno;
      }
    }
    if (!d.eof && !d.inBlocked && !drained && d.pending < p->cap) {
      size_t want = p->cap - d.pending;
      ssize_t n = splice(d.src, nullptr, d.pw, nullptr, want, kSpliceFlags);
      if (n > 0) {
        drained = static_cast<size_t>(n) < want;
        d.pending += static_cast<size_t>(n);
        double b = static_cast<double>(n);
        st[d.readSlot] += b;
        if (d.count[0] != nullptr) *d.count[0] += b;
        if (d.count[1] != nullptr) *d.count[1] += b;
        st[kLastDir] = d.srcSide + 1;
        moved = true;
      } else if (n == 0) {
        d.eof = true;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN) {
        // No data, or the pipe's slots are used up by small segments: wait for the pipe to drain.
        if (d.pending > 0) d.inBlocked = true;
      } else {
        *errSide = d.srcSide;
        return errno;
      }
    }
    if (!moved) break;
  }
  if (d.eof && d.pending == 0 && !d.shut) {
    d.shut = true;
    if (shutdown(d.dst, SHUT_WR) != 0 && errno != ENOTCONN) {
      *errSide = 1 - d.srcSide;
      return errno;
    }
  }
  return 0;
}

// The pair stopped by itself: stop polling and tell JS (which calls spliceStop).
void Finish(Pair* p, int side, int err) {
  p->stopped = true;
  for (int s = 0; s < 2; s++) {
    if (p->events[s] != 0) uv_poll_stop(&p->poll[s]);
    p->events[s] = 0;
  }
  Thread* t = p->t;
  if (t->cb.IsEmpty()) return;
  Napi::Env env(t->env);
  Napi::HandleScope scope(env);
  try {
    t->cb.MakeCallback(env.Global(),
                       {Napi::Number::New(env, p->id), Napi::Number::New(env, side), Napi::Number::New(env, err)},
                       t->async);
  } catch (const Napi::Error& e) {
    // The callback threw: report it like any uncaught exception (the pair may be gone now).
    napi_fatal_exception(t->env, e.Value());
  }
}

void OnPoll(uv_poll_t* h, int status, int events) {
  Pair* p = static_cast<Pair*>(h->data);
  if (p->stopped) return;
  int side = h == &p->poll[0] ? 0 : 1;
  if (status < 0) return Finish(p, side, -status);
  int errSide = 0;
  int err = 0;
  double before = p->state[kReadA] + p->state[kReadB] + p->state[kWrittenA] + p->state[kWrittenB];
  // Readable: this side is the source of dir[side]; writable: the destination of dir[1 - side].
  if (events & UV_READABLE) err = Pump(p, p->dir[side], &errSide);
  if (err == 0 && (events & UV_WRITABLE)) err = Pump(p, p->dir[1 - side], &errSide);
  if (p->state[kReadA] + p->state[kReadB] + p->state[kWrittenA] + p->state[kWrittenB] != before) {
    p->state[kActivity] = NowMs();
  }
  if (err != 0) return Finish(p, errSide, err);
  if (p->dir[0].shut && p->dir[1].shut) return Finish(p, 0, 0);
  Arm(p);
}

void Cleanup(void* arg) {
  Thread* t = static_cast<Thread*>(arg);
  for (Pair* p : t->pairs) {
    if (p != nullptr) Release(p);
  }
  t->cb.Reset();
  if (t->async != nullptr) napi_async_destroy(t->env, t->async);
  if (current == t) current = nullptr;
  // t itself stays allocated: poll close callbacks that run later still reach it through their pair.
}

Thread* ThreadOf(Napi::Env env) {
  if (current != nullptr && current->env == env) return current;
  Thread* t = new Thread();
  t->env = env;
  if (napi_get_uv_event_loop(env, &t->loop) != napi_ok) throw Napi::Error::New(env, "no event loop");
  napi_async_init(env, nullptr, Napi::String::New(env, "outrigger.splice"), &t->async);
  AddHandleCleanup(env, t->loop, Cleanup, t);
  current = t;
  return t;
}

Napi::Value SetCallback(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(env, "callback must be a function");
  Thread* t = ThreadOf(env);
  t->cb = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

int MakePipe(Dir& d, int size) {
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return -1;
  d.pr = fds[0];
  d.pw = fds[1];
  // Best effort: above the user's pipe quota the kernel refuses; the default size still works.
  if (size > 0) fcntl(d.pw, F_SETPIPE_SZ, size);
  return fcntl(d.pw, F_GETPIPE_SZ);
}

Napi::Value Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fdA = static_cast<int>(IntArg(info, 0, "fdA", 0, INT_MAX));
  int fdB = static_cast<int>(IntArg(info, 1, "fdB", 0, INT_MAX));
  if (info.Length() < 5 || !info[2].IsTypedArray() || !info[3].IsTypedArray() || !info[4].IsArray()) {
    throw Napi::TypeError::New(env, "spliceStart(fdA, fdB, state: Float64Array, counters: Float64Array, slots: number[6], pipeSize)");
  }
  Napi::TypedArray sta = info[2].As<Napi::TypedArray>();
  Napi::TypedArray cta = info[3].As<Napi::TypedArray>();
  if (sta.TypedArrayType() != napi_float64_array || cta.TypedArrayType() != napi_float64_array) {
    throw Napi::TypeError::New(env, "state and counters must be Float64Arrays");
  }
  Napi::Float64Array state = info[2].As<Napi::Float64Array>();
  Napi::Float64Array counters = info[3].As<Napi::Float64Array>();
  if (state.ElementLength() < kStateSlots) throw Napi::RangeError::New(env, "state needs 6 slots");
  Napi::Array slots = info[4].As<Napi::Array>();
  if (slots.Length() != 6) throw Napi::RangeError::New(env, "slots must have 6 entries");
  double* cslot[6];
  for (uint32_t i = 0; i < 6; i++) {
    Napi::Value v = slots.Get(i);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -2;
    if (d == -1) {
      cslot[i] = nullptr;
      continue;
    }
    if (!(d >= 0 && d < static_cast<double>(counters.ElementLength())) || static_cast<double>(static_cast<size_t>(d)) != d) {
      throw Napi::RangeError::New(env, "slots must be -1 or indexes of counters");
    }
    cslot[i] = counters.Data() + static_cast<size_t>(d);
  }
  int pipeSize = static_cast<int>(IntArg(info, 5, "pipeSize", 0, 64 * 1024 * 1024));
  Thread* t = ThreadOf(env);

  Pair* p = new Pair();
  p->t = t;
  int err = 0;
  const char* step = nullptr;
  p->fd[0] = fcntl(fdA, F_DUPFD_CLOEXEC, 0);
  if (p->fd[0] < 0) err = errno, step = "dup";
  if (err == 0) {
    p->fd[1] = fcntl(fdB, F_DUPFD_CLOEXEC, 0);
    if (p->fd[1] < 0) err = errno, step = "dup";
  }
  if (err == 0) {
    int c0 = MakePipe(p->dir[0], pipeSize);
    int c1 = c0 > 0 ? MakePipe(p->dir[1], pipeSize) : -1;
    if (c0 <= 0 || c1 <= 0) err = errno, step = "pipe";
    else p->cap = static_cast<size_t>(c0 < c1 ? c0 : c1);
  }
  for (int s = 0; err == 0 && s < 2; s++) {
    int r = uv_poll_init(t->loop, &p->poll[s], p->fd[s]);
    if (r != 0) {
      err = -r, step = "uv_poll_init";
      break;
    }
    p->poll[s].data = p;
    p->polls++;
  }
  if (err != 0) {
    for (Dir& d : p->dir) {
      CloseFd(d.pr);
      CloseFd(d.pw);
    }
    CloseFd(p->fd[0]);
    CloseFd(p->fd[1]);
    if (p->polls == 0) {
      delete p;
    } else {
      for (int s = 0; s < p->polls; s++) uv_close(reinterpret_cast<uv_handle_t*>(&p->poll[s]), OnPollClosed);
    }
    throw ErrnoError(env, err, step);
  }
  for (int i = 0; i < 2; i++) {
    Dir& d = p->dir[i];
    d.src = p->fd[i];
    d.dst = p->fd[1 - i];
    d.srcSide = i;
    d.readSlot = i == 0 ? kReadA : kReadB;
    d.writeSlot = i == 0 ? kWrittenB : kWrittenA;
    d.count[0] = cslot[i * 2];
    d.count[1] = cslot[i * 2 + 1];
    d.pausedCount = cslot[4 + i];
  }
  p->state = state.Data();
  p->stateRef = Napi::Persistent(state);
  p->countersRef = Napi::Persistent(counters);
  p->id = TakeSlot(t->pairs, t->freeIds, p);
  Arm(p);
  return Napi::Number::New(env, p->id);
}

// The bytes left in a pipe (exactly d.pending of them), or null.
Napi::Value Leftover(Napi::Env env, Dir& d) {
  if (d.pending == 0) return env.Null();
  Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::New(env, d.pending);
  size_t got = 0;
  while (got < d.pending) {
    ssize_t n = read(d.pr, buf.Data() + got, d.pending - got);
    if (n > 0) got += static_cast<size_t>(n);
    else if (n < 0 && errno == EINTR) continue;
    else break;
  }
  return got == d.pending ? static_cast<Napi::Value>(buf) : static_cast<Napi::Value>(Napi::Buffer<uint8_t>::Copy(env, buf.Data(), got));
}

Napi::Value Stop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Thread* t = ThreadOf(env);
  uint32_t id = static_cast<uint32_t>(IntArg(info, 0, "id", 0, UINT32_MAX));
  if (id >= t->pairs.size() || t->pairs[id] == nullptr) throw Napi::RangeError::New(env, "no such splice pair");
  Pair* p = t->pairs[id];
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Leftover(env, p->dir[0]));
  out.Set(1u, Leftover(env, p->dir[1]));
  Release(p);
  return out;
}

}  // namespace

void RegisterSplice(Napi::Env env, Napi::Object exports) {
  exports.Set("spliceSetCallback", Napi::Function::New(env, SetCallback, "spliceSetCallback"));
  exports.Set("spliceStart", Napi::Function::New(env, Start, "spliceStart"));
  exports.Set("spliceStop", Napi::Function::New(env, Stop, "spliceStop"));
}

}  // namespace outrigger
