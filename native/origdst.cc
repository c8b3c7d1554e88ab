// Transparent interception (original destination of an accepted connection):
// getOriginalDst(fd) -> {address, port, family} | null: the destination the client connected
//   to before an iptables REDIRECT (netfilter's SO_ORIGINAL_DST for IPv4, IP6T_SO_ORIGINAL_DST
//   for IPv6, both read from conntrack). null when the connection was not NATed (ENOENT: no
//   conntrack entry, or a family without the option); other failures throw an errno Error.
// setTransparent(fd) -> undefined: IP_TRANSPARENT (IPV6_TRANSPARENT on IPv6 sockets) on a
//   listening socket, so that iptables TPROXY can deliver connections for foreign addresses
//   to it; their local address is then the original destination. Needs CAP_NET_ADMIN.
#include <arpa/inet.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "outrigger.h"

namespace outrigger {
namespace {

int SocketFamily(int fd) {
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
  return ss.ss_family;
}

Napi::Value GetOriginalDst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntArg(info, 0, "fd", 0, INT_MAX));
  int family = SocketFamily(fd);
  if (family < 0) throw ErrnoError(env, errno, "getsockname");
  sockaddr_storage ss;
  std::memset(&ss, 0, sizeof(ss));
  socklen_t len = sizeof(ss);
  int rc;
  if (family == AF_INET) {
    rc = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len);
  } else if (family == AF_INET6) {
    rc = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len);
    // An IPv4 client on a dual-stack socket: conntrack knows it as IPv4.
    if (rc != 0 && errno == ENOENT) {
      len = sizeof(ss);
      rc = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len);
    }
  } else {
    return env.Null();
  }
  if (rc != 0) {
    if (errno == ENOENT || errno == ENOPROTOOPT) return env.Null();
    throw ErrnoError(env, errno, "getsockopt");
  }
  char text[INET6_ADDRSTRLEN];
  int port;
  const char* fam;
  if (ss.ss_family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    if (inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text)) == nullptr) throw ErrnoError(env, errno, "inet_ntop");
    port = ntohs(v4->sin_port);
    fam = "IPv4";
  } else if (ss.ss_family == AF_INET6) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text)) == nullptr) throw ErrnoError(env, errno, "inet_ntop");
    port = ntohs(v6->sin6_port);
    fam = "IPv6";
  } else {
    return env.Null();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("address", Napi::String::New(env, text));
  out.Set("port", Napi::Number::New(env, port));
  out.Set("family", Napi::String::New(env, fam));
  return out;
}

Napi::Value SetTransparent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntArg(info, 0, "fd", 0, INT_MAX));
  int family = SocketFamily(fd);
  if (family < 0) throw ErrnoError(env, errno, "getsockname");
  int one = 1;
  int rc = family == AF_INET6 ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))
                              : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
  if (rc != 0) throw ErrnoError(env, errno, "setsockopt");
  // A dual-stack IPv6 socket also takes TPROXY'd IPv4 connections.
  if (family == AF_INET6) setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
  return env.Undefined();
}

}  // namespace

void RegisterOrigDst(Napi::Env env, Napi::Object exports) {
  exports.Set("getOriginalDst", Napi::Function::New(env, GetOriginalDst, "getOriginalDst"));
  exports.Set("setTransparent", Napi::Function::New(env, SetTransparent, "setTransparent"));
}

}  // namespace outrigger
