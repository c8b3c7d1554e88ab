// Listening sockets shareable across worker threads (one socket, dup'ed per worker):
// listenTcp(host, port, backlog, reusePort) -> {fd, port}: non-blocking, close-on-exec TCP
// socket (IPv4 or IPv6 literal host) with SO_REUSEADDR (TIME_WAIT leftovers do not block a
// restart), plus SO_REUSEPORT only when reusePort is true (a deliberate hand-over: without it
// a port held by any other socket fails with EADDRINUSE), bound and listening; port 0 is
// resolved with getsockname(). listenReusePort(host, port, backlog) = listenTcp(..., true).
// dupFd(fd) -> new fd (F_DUPFD_CLOEXEC); closeFd(fd).
//
// Native accept (TLS listeners served without a net.Socket per connection, src/network/fd-socket.ts):
// acceptStart(listenFd, fn) -> id: polls the listening fd on this thread's loop; when it is
//   readable, accept4 (non-blocking, close-on-exec, TCP_NODELAY set) up to kAcceptBatch
//   connections and calls fn(fd, remoteAddress, remotePort, localAddress, localPort) for each
//   (the addresses as Node formats them; the caller owns fd; the local one is the listening
//   socket's own when it is bound to a specific address and not transparent, else getsockname's;
//   when fn cannot run because the thread's environment is stopping, fd is closed and the round
//   ends). ECONNABORTED and the like end the round (the next readable event retries); out of
//   descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) stops the poll for kBackoffMs (a
//   level-triggered poll would spin on the waiting connection), then accepting resumes.
// acceptStop(id): stops polling and closes the listening fd (as net.Server.close() does).
// shutdownWrite(fd): shutdown(fd, SHUT_WR) (the FIN of an accepted fd; ENOTCONN is ignored).
//
// Native connect (plaintext upstream connections without a net.Socket, src/network/fd-socket.ts
// FdSocket.connect):
// connectTcp(host, port) -> fd, or -errno: a non-blocking, close-on-exec TCP socket with
//   TCP_NODELAY whose connect(2) to the IPv4/IPv6 literal host has started (EINPROGRESS) or
//   completed; on an immediate failure the socket is closed and -errno returned. The caller
//   polls fd for writability (read.cc readWantWrite), then asks connectResult.
// connectResult(fd) -> 0 or -errno: the connect's outcome (SO_ERROR), once fd is writable.
// socketName(fd) -> [address, port] (getsockname, as Node formats them; ['', 0] on failure).
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <uv.h>
#include <vector>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>

#include "outrigger.h"

namespace outrigger {
namespace {

// host:port as a socket address (its length); "[::1]" is taken as "::1". Throws (code EINVAL)
// unless host is an IPv4 or IPv6 address literal.
socklen_t SockAddr(Napi::Env env, std::string host, int port, sockaddr_storage* ss) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::memset(ss, 0, sizeof(*ss));
  auto* v4 = reinterpret_cast<sockaddr_in*>(ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    return sizeof(sockaddr_in);
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    return sizeof(sockaddr_in6);
  }
  Napi::Error e = Napi::TypeError::New(env, "host must be an IPv4 or IPv6 address literal: " + host);
  e.Set("code", Napi::String::New(env, "EINVAL"));
  throw e;
}

Napi::Value Listen(const Napi::CallbackInfo& info, bool reusePort) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "host must be a string");
  std::string host = info[0].As<Napi::String>().Utf8Value();
  int port = static_cast<int>(IntArg(info, 1, "port", 0, 65535));
  int backlog = static_cast<int>(IntArg(info, 2, "backlog", 1, INT_MAX));
  sockaddr_storage ss;
  socklen_t len = SockAddr(env, host, port, &ss);
  int family = ss.ss_family;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);

  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(env, errno, "socket");
  const char* step = nullptr;
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) step = "setsockopt";
  else if (reusePort && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) step = "setsockopt";
  else if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) step = "bind";
  else if (listen(fd, backlog) != 0) step = "listen";
  else if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) step = "getsockname";
  if (step != nullptr) {
    int err = errno;
    close(fd);
    throw ErrnoError(env, err, step);
  }
  int bound = ntohs(family == AF_INET ? v4->sin_port : v6->sin6_port);
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd));
  out.Set("port", Napi::Number::New(env, bound));
  return out;
}

Napi::Value ListenReusePort(const Napi::CallbackInfo& info) {
  return Listen(info, true);
}

Napi::Value ListenTcp(const Napi::CallbackInfo& info) {
  if (info.Length() < 4 || !info[3].IsBoolean()) throw Napi::TypeError::New(info.Env(), "reusePort must be a boolean");
  return Listen(info, info[3].As<Napi::Boolean>().Value());
}

Napi::Value DupFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntArg(info, 0, "fd", 0, INT_MAX));
  int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (nfd < 0) throw ErrnoError(env, errno, "dup");
  return Napi::Number::New(env, nfd);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntArg(info, 0, "fd", 0, INT_MAX));
  // Linux always releases the fd, even when close() reports EINTR: never retry.
  if (close(fd) != 0 && errno != EINTR) throw ErrnoError(env, errno, "close");
  return env.Undefined();
}

constexpr int kAcceptBatch = 32;
constexpr uint64_t kBackoffMs = 100;

struct Acceptor;

struct AcceptThread {
  napi_env env = nullptr;
  napi_async_context async = nullptr;
  std::vector<Acceptor*> list;  // by id; null once stopped
};

struct Acceptor {
  AcceptThread* t = nullptr;
  uint32_t id = 0;
  int fd = -1;
  napi_ref cb = nullptr;
  uv_poll_t poll;
  uv_timer_t backoff;
  int open = 0;  // handles not closed yet (the acceptor is deleted when both are)
  bool stopped = false;
  // The listening socket's own address when it is bound to one (not a wildcard): every accepted
  // connection has it as its local address, so no getsockname() per accept.
  bool fixedLocal = false;
  sockaddr_storage local;
};

// Whether every connection accepted on fd has ss (fd's address) as its local address: a specific
// address (not 0.0.0.0 or ::) on a socket that is not transparent (IP_TRANSPARENT accepts
// connections to other addresses).
bool FixedLocal(int fd, const sockaddr_storage& ss) {
  int on = 0;
  socklen_t len = sizeof(on);
  if (ss.ss_family == AF_INET) {
    if (reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr.s_addr == htonl(INADDR_ANY)) return false;
    return getsockopt(fd, SOL_IP, IP_TRANSPARENT, &on, &len) == 0 && on == 0;
  }
  if (ss.ss_family == AF_INET6) {
    if (IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr)) return false;
    return getsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &on, &len) == 0 && on == 0;
  }
  return false;
}

thread_local AcceptThread* acceptThread = nullptr;

void OnAcceptClosed(uv_handle_t* h) {
  Acceptor* a = static_cast<Acceptor*>(h->data);
  if (--a->open == 0) delete a;
}

void OnAcceptable(uv_poll_t* h, int status, int);

void OnBackoff(uv_timer_t* h) {
  Acceptor* a = static_cast<Acceptor*>(h->data);
  if (!a->stopped) uv_poll_start(&a->poll, UV_READABLE, OnAcceptable);
}

void StopAcceptor(Acceptor* a) {
  if (a->stopped) return;
  a->stopped = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&a->backoff), OnAcceptClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&a->poll), OnAcceptClosed);  // before the fd goes
  close(a->fd);
  a->fd = -1;
  if (a->cb != nullptr) napi_delete_reference(a->t->env, a->cb);
  a->cb = nullptr;
  a->t->list[a->id] = nullptr;
}

void AcceptCleanup(void* arg) {
  AcceptThread* t = static_cast<AcceptThread*>(arg);
  for (Acceptor* a : t->list) {
    if (a != nullptr) StopAcceptor(a);
  }
  if (t->async != nullptr) napi_async_destroy(t->env, t->async);
  t->async = nullptr;
  if (acceptThread == t) acceptThread = nullptr;
  // t stays allocated (a leak of one small struct per worker thread): close callbacks reach their acceptor only.
}

// An address as Node's socket.remoteAddress / remotePort give it.
void AddressOf(napi_env env, const sockaddr_storage& ss, napi_value* host, napi_value* port) {
  char text[INET6_ADDRSTRLEN] = "";
  int p = 0;
  if (ss.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
    p = ntohs(v4->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    p = ntohs(v6->sin6_port);
  }
  napi_create_string_latin1(env, text, NAPI_AUTO_LENGTH, host);
  napi_create_int32(env, p, port);
}

void OnAcceptable(uv_poll_t* h, int status, int) {
  Acceptor* a = static_cast<Acceptor*>(h->data);
  if (a->stopped || status < 0) return;
  napi_env env = a->t->env;
  for (int i = 0; i < kAcceptBatch && !a->stopped; i++) {
    sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    int fd = accept4(a->fd, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        uv_poll_stop(&a->poll);
        uv_timer_start(&a->backoff, OnBackoff, kBackoffMs, 0);
      }
      break;  // EAGAIN: done; ECONNABORTED...: the next readable event retries
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_storage local;
    socklen_t llen = sizeof(local);
    if (a->fixedLocal) local = a->local;
    else if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) != 0) std::memset(&local, 0, sizeof(local));
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) {
      close(fd);
      break;
    }
    napi_value argv[5], fn, recv, result;
    napi_create_int32(env, fd, &argv[0]);
    AddressOf(env, peer, &argv[1], &argv[2]);
    AddressOf(env, local, &argv[3], &argv[4]);
    napi_get_reference_value(env, a->cb, &fn);
    napi_get_global(env, &recv);
    napi_status st = napi_make_callback(env, a->t->async, recv, fn, 5, argv, &result);
    bool thrown = false;
    if (st != napi_ok) napi_is_exception_pending(env, &thrown);
    if (thrown) {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e);
      napi_fatal_exception(env, e);
    }
    napi_close_handle_scope(env, scope);
    if (st != napi_ok && !thrown) {
      // JS cannot run: the thread's environment is stopping (its worker exits or is terminated;
      // the loop still turns until the cleanup hook stops this acceptor). Nobody took fd, and
      // more accepts would be leaked connections whose clients wait for ever.
      close(fd);
      break;
    }
  }
}

Napi::Value AcceptStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntArg(info, 0, "fd", 0, INT_MAX));
  if (info.Length() < 2 || !info[1].IsFunction()) throw Napi::TypeError::New(env, "acceptStart(fd, callback)");
  AcceptThread* t = acceptThread != nullptr && acceptThread->env == env ? acceptThread : nullptr;
  if (t == nullptr) {
    t = new AcceptThread();
    t->env = env;
    napi_async_init(env, nullptr, Napi::String::New(env, "outrigger.accept"), &t->async);
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "no event loop");
  if (acceptThread != t) {
    AddHandleCleanup(env, loop, AcceptCleanup, t);
    acceptThread = t;
  }
  Acceptor* a = new Acceptor();
  a->t = t;
  a->fd = fd;
  int r = uv_poll_init(loop, &a->poll, fd);
  if (r != 0) {
    delete a;
    throw ErrnoError(env, -r, "uv_poll_init");
  }
  a->poll.data = a;
  uv_timer_init(loop, &a->backoff);
  uv_unref(reinterpret_cast<uv_handle_t*>(&a->backoff));  // the poll keeps the loop alive, not the timer
  a->backoff.data = a;
  a->open = 2;
  socklen_t llen = sizeof(a->local);
  a->fixedLocal = getsockname(fd, reinterpret_cast<sockaddr*>(&a->local), &llen) == 0 && FixedLocal(fd, a->local);
  napi_create_reference(env, info[1], 1, &a->cb);
  a->id = static_cast<uint32_t>(t->list.size());
  t->list.push_back(a);
  uv_poll_start(&a->poll, UV_READABLE, OnAcceptable);
  return Napi::Number::New(env, a->id);
}

Napi::Value AcceptStop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AcceptThread* t = acceptThread != nullptr && acceptThread->env == env ? acceptThread : nullptr;
  int64_t id = IntArg(info, 0, "id", 0, UINT32_MAX);
  if (t == nullptr || static_cast<size_t>(id) >= t->list.size() || t->list[id] == nullptr) {
    throw Napi::RangeError::New(env, "no native acceptor with that id");
  }
  StopAcceptor(t->list[id]);
  return env.Undefined();
}

Napi::Value ShutdownWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntArg(info, 0, "fd", 0, INT_MAX));
  if (shutdown(fd, SHUT_WR) != 0 && errno != ENOTCONN) throw ErrnoError(env, errno, "shutdown");
  return env.Undefined();
}

Napi::Value ConnectTcp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "host must be a string");
  int port = static_cast<int>(IntArg(info, 1, "port", 1, 65535));
  sockaddr_storage ss;
  socklen_t len = SockAddr(env, info[0].As<Napi::String>().Utf8Value(), port, &ss);
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Napi::Number::New(env, -errno);
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  int r;
  do r = connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  while (r != 0 && errno == EINTR);
  if (r != 0 && errno != EINPROGRESS) {
    int err = errno;
    close(fd);
    return Napi::Number::New(env, -err);
  }
  return Napi::Number::New(env, fd);
}

Napi::Value ConnectResult(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntArg(info, 0, "fd", 0, INT_MAX));
  int err = 0;
  socklen_t elen = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) err = errno;
  return Napi::Number::New(env, -err);
}

Napi::Value SocketName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntArg(info, 0, "fd", 0, INT_MAX));
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) std::memset(&ss, 0, sizeof(ss));
  napi_value out[2];
  AddressOf(env, ss, &out[0], &out[1]);
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Value(env, out[0]));
  a.Set(1u, Napi::Value(env, out[1]));
  return a;
}

}  // namespace

void RegisterListen(Napi::Env env, Napi::Object exports) {
  exports.Set("listenReusePort", Napi::Function::New(env, ListenReusePort, "listenReusePort"));
  exports.Set("listenTcp", Napi::Function::New(env, ListenTcp, "listenTcp"));
  exports.Set("dupFd", Napi::Function::New(env, DupFd, "dupFd"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("acceptStart", Napi::Function::New(env, AcceptStart, "acceptStart"));
  exports.Set("acceptStop", Napi::Function::New(env, AcceptStop, "acceptStop"));
  exports.Set("shutdownWrite", Napi::Function::New(env, ShutdownWrite, "shutdownWrite"));
  exports.Set("connectTcp", Napi::Function::New(env, ConnectTcp, "connectTcp"));
  exports.Set("connectResult", Napi::Function::New(env, ConnectResult, "connectResult"));
  exports.Set("socketName", Napi::Function::New(env, SocketName, "socketName"));
}

}  // namespace outrigger
