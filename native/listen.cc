// Listening sockets shareable across worker threads (one socket, dup'ed per worker):
// listenTcp(host, port, backlog, reusePort) -> {fd, port}: non-blocking, close-on-exec TCP
// socket (IPv4 or IPv6 literal host) with SO_REUSEADDR (TIME_WAIT leftovers do not block a
// restart), plus SO_REUSEPORT only when reusePort is true (a deliberate hand-over: without it
// a port held by any other socket fails with EADDRINUSE), bound and listening; port 0 is
// resolved with getsockname(). listenReusePort(host, port, backlog) = listenTcp(..., true).
// dupFd(fd) -> new fd (F_DUPFD_CLOEXEC); closeFd(fd).
#include <arpa/inet.h>
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

Napi::Value Listen(const Napi::CallbackInfo& info, bool reusePort) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "host must be a string");
  std::string host = info[0].As<Napi::String>().Utf8Value();
  int port = static_cast<int>(IntArg(info, 1, "port", 0, 65535));
  int backlog = static_cast<int>(IntArg(info, 2, "backlog", 1, INT_MAX));
  // Accept "[::1]" as well as "::1".
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);

  sockaddr_storage ss;
  std::memset(&ss, 0, sizeof(ss));
  socklen_t len;
  int family;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    family = v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    family = v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in6);
  } else {
    Napi::Error e = Napi::TypeError::New(env, "host must be an IPv4 or IPv6 address literal: " + host);
    e.Set("code", Napi::String::New(env, "EINVAL"));
    throw e;
  }

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

}  // namespace

void RegisterListen(Napi::Env env, Napi::Object exports) {
  exports.Set("listenReusePort", Napi::Function::New(env, ListenReusePort, "listenReusePort"));
  exports.Set("listenTcp", Napi::Function::New(env, ListenTcp, "listenTcp"));
  exports.Set("dupFd", Napi::Function::New(env, DupFd, "dupFd"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
}

}  // namespace outrigger
