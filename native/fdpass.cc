// File-descriptor passing for the hot upgrade (src/upgrade): unix SOCK_SEQPACKET sockets (one
// message = one payload + its fds, boundaries kept by the kernel) and SCM_RIGHTS.
//   fdListen(path, backlog) -> fd        bind + listen (the caller removes a stale path first)
//   fdAccept(fd) -> fd | -1              non-blocking accept; -1 = nobody waiting
//   fdConnect(path) -> fd                non-blocking connect: it completes at once or fails; a
//                                        listener whose backlog is full fails it with EAGAIN (a
//                                        blocking connect would wait until that process accepts)
//   fdSend(fd, payload, fds, timeoutMs)  sendmsg with SCM_RIGHTS; waits for room up to timeoutMs
//   fdRecv(fd, timeoutMs) -> {payload, fds, eof} | null   null = nothing within timeoutMs
//   fdPeerCred(fd) -> {uid, pid}        the connected peer's credentials (SO_PEERCRED, set by the kernel)
// Every socket made here and every fd received is non-blocking and close-on-exec.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  // struct ucred
#endif
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "outrigger.h"

namespace outrigger {
namespace {

// Linux SCM_MAX_FD: the kernel refuses more fds in one message.
constexpr size_t kMaxFds = 253;
// Larger payloads are split by the caller (src/upgrade/channel.ts).
constexpr size_t kMaxPayload = 65536;

sockaddr_un UnixAddr(Napi::Env env, const std::string& path) {
  sockaddr_un sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sa.sun_path)) {
    throw Napi::RangeError::New(env, "unix socket path must be 1 to " + std::to_string(sizeof(sa.sun_path) - 1) +
                                         " bytes: " + path);
  }
  std::memcpy(sa.sun_path, path.data(), path.size());
  return sa;
}

std::string StrArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

// Waits until fd is ready for `events` or timeoutMs passed; false on timeout.
bool WaitFor(Napi::Env env, int fd, short events, int timeoutMs) {
  pollfd p{fd, events, 0};
  for (;;) {
    int r = poll(&p, 1, timeoutMs);
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) throw ErrnoError(env, errno, "poll");
  }
}

Napi::Value FdListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sockaddr_un sa = UnixAddr(env, StrArg(info, 0, "path"));
  int backlog = static_cast<int>(IntArg(info, 1, "backlog", 1, INT_MAX));
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(env, errno, "socket");
  const char* step = nullptr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) step = "bind";
  else if (listen(fd, backlog) != 0) step = "listen";
  if (step != nullptr) {
    int err = errno;
    close(fd);
    throw ErrnoError(env, err, step);
  }
  return Napi::Number::New(env, fd);
}

Napi::Value FdAccept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntArg(info, 0, "fd", 0, INT_MAX));
  for (;;) {
    int c = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) return Napi::Number::New(env, c);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED) return Napi::Number::New(env, -1);
    throw ErrnoError(env, errno, "accept");
  }
}

Napi::Value FdConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sockaddr_un sa = UnixAddr(env, StrArg(info, 0, "path"));
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(env, errno, "socket");
  int r;
  do r = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  while (r != 0 && errno == EINTR);
  if (r != 0) {
    int err = errno;
    close(fd);
    throw ErrnoError(env, err, "connect");
  }
  return Napi::Number::New(env, fd);
}

Napi::Value FdSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntArg(info, 0, "fd", 0, INT_MAX));
  if (info.Length() < 2 || !info[1].IsBuffer()) throw Napi::TypeError::New(env, "payload must be a Buffer");
  Napi::Buffer<uint8_t> payload = info[1].As<Napi::Buffer<uint8_t>>();
  if (payload.Length() == 0 || payload.Length() > kMaxPayload) {
    throw Napi::RangeError::New(env, "payload must be 1 to " + std::to_string(kMaxPayload) + " bytes");
  }
  if (info.Length() < 3 || !info[2].IsArray()) throw Napi::TypeError::New(env, "fds must be an array");
  Napi::Array arr = info[2].As<Napi::Array>();
  if (arr.Length() > kMaxFds) throw Napi::RangeError::New(env, "at most 253 fds per message");
  std::vector<int> fds;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= INT_MAX) || static_cast<double>(static_cast<int>(d)) != d) {
      throw Napi::RangeError::New(env, "fds must be non-negative integers");
    }
    fds.push_back(static_cast<int>(d));
  }
  int timeoutMs = static_cast<int>(IntArg(info, 3, "timeoutMs", 0, INT_MAX));

  iovec iov{payload.Data(), payload.Length()};
  msghdr msg;
  std::memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.assign(CMSG_SPACE(sizeof(int) * fds.size()), 0);
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n >= 0) return Napi::Number::New(env, static_cast<double>(n));
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!WaitFor(env, fd, POLLOUT, timeoutMs)) throw ErrnoError(env, ETIMEDOUT, "sendmsg");
      continue;
    }
    throw ErrnoError(env, errno, "sendmsg");
  }
}

Napi::Value FdRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntArg(info, 0, "fd", 0, INT_MAX));
  int timeoutMs = static_cast<int>(IntArg(info, 1, "timeoutMs", 0, INT_MAX));
  std::vector<uint8_t> buf(kMaxPayload);
  std::vector<char> control(CMSG_SPACE(sizeof(int) * kMaxFds), 0);
  iovec iov{buf.data(), buf.size()};
  msghdr msg;
  ssize_t n;
  for (;;) {
    std::memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n >= 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (timeoutMs == 0 || !WaitFor(env, fd, POLLIN, timeoutMs)) return env.Null();
      timeoutMs = 0;  // one wait; a spurious wake-up reports "nothing yet"
      continue;
    }
    if (errno == ECONNRESET) {
      n = 0;
      break;
    }
    throw ErrnoError(env, errno, "recvmsg");
  }
  std::vector<int> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const int* p = reinterpret_cast<const int*>(CMSG_DATA(c));
    for (size_t i = 0; i < count; i++) {
      int f;
      std::memcpy(&f, p + i, sizeof(int));
      fds.push_back(f);
    }
  }
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
    for (int f : fds) close(f);  // a partial message is useless: release what came with it
    throw ErrnoError(env, EMSGSIZE, "recvmsg");
  }
  for (int f : fds) {
    int fl = fcntl(f, F_GETFL);
    if (fl >= 0) fcntl(f, F_SETFL, fl | O_NONBLOCK);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("payload", Napi::Buffer<uint8_t>::Copy(env, buf.data(), static_cast<size_t>(n)));
  Napi::Array arr = Napi::Array::New(env, fds.size());
  for (size_t i = 0; i < fds.size(); i++) arr.Set(static_cast<uint32_t>(i), Napi::Number::New(env, fds[i]));
  out.Set("fds", arr);
  out.Set("eof", Napi::Boolean::New(env, n == 0));
  return out;
}

Napi::Value FdPeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntArg(info, 0, "fd", 0, INT_MAX));
  ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) throw ErrnoError(env, errno, "getsockopt(SO_PEERCRED)");
  Napi::Object out = Napi::Object::New(env);
  out.Set("uid", Napi::Number::New(env, static_cast<double>(cred.uid)));
  out.Set("pid", Napi::Number::New(env, static_cast<double>(cred.pid)));
  return out;
}

}  // namespace

void RegisterFdPass(Napi::Env env, Napi::Object exports) {
  exports.Set("fdListen", Napi::Function::New(env, FdListen, "fdListen"));
  exports.Set("fdAccept", Napi::Function::New(env, FdAccept, "fdAccept"));
  exports.Set("fdConnect", Napi::Function::New(env, FdConnect, "fdConnect"));
  exports.Set("fdSend", Napi::Function::New(env, FdSend, "fdSend"));
  exports.Set("fdRecv", Napi::Function::New(env, FdRecv, "fdRecv"));
  exports.Set("fdPeerCred", Napi::Function::New(env, FdPeerCred, "fdPeerCred"));
}

}  // namespace outrigger
