// Client side of the native TLS engine (TlsConn of tls_conn.cc in connect state): what an
// upstream connection adds before its first feed(), and the sessions it may resume.
//
//   tlsClientSetup(conn, servername, alpnWire, key)  SNI (none when ""), the ALPN offer (wire
//                        format, or undefined), verification left to the caller (the chain's
//                        verdict is read after the handshake, as Node's client does), and the
//                        session cached under `key` offered when there is one; returns whether
//                        a session was offered
//   tlsClientForget(context, key)  drops the session cached under key (a connection that
//                        failed does not offer it again)
//   tlsClientSessions(context)  sessions cached for a context (tests, stats)
//   tlsVerifyErrorString(code)  OpenSSL's text of an X509 verification result
//
// Sessions: every client context gets its own cache of copies (SSL_CTX ex_data): the upstreams' tickets
// (TLS 1.3, after the handshake) or sessions (TLS 1.2) arrive through the context's new-session
// callback and are kept under the connection's key (host:port|SNI), newest replacing older
// ones, at most kMaxSessions per context (least recently stored dropped first). A context is
// used by native client connections only (src/tls/client.ts builds a separate one): Node's
// TLSSocket callbacks would read these SSLs' app data as its own.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <list>
#include <string>
#include <unordered_map>
#include <utility>

#include "outrigger.h"

namespace outrigger {
namespace {

constexpr size_t kMaxSessions = 256;

class SessionCache {
 public:
  ~SessionCache() {
    for (auto& e : lru_) SSL_SESSION_free(e.second);
  }

  SSL_SESSION* Get(const std::string& key) const {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : it->second->second;
  }

  // Takes the caller's reference to `s`.
  void Put(const std::string& key, SSL_SESSION* s) {
    Drop(key);
    lru_.emplace_front(key, s);
    index_[key] = lru_.begin();
    if (lru_.size() > kMaxSessions) {
      auto& last = lru_.back();
      SSL_SESSION_free(last.second);
      index_.erase(last.first);
      lru_.pop_back();
    }
  }

  void Drop(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return;
    SSL_SESSION_free(it->second->second);
    lru_.erase(it->second);
    index_.erase(it);
  }

  size_t Size() const { return lru_.size(); }

 private:
  std::list<std::pair<std::string, SSL_SESSION*>> lru_;  // newest first
  std::unordered_map<std::string, std::list<std::pair<std::string, SSL_SESSION*>>::iterator> index_;
};

void FreeCache(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/, void* /*argp*/) {
  delete static_cast<SessionCache*>(ptr);
}

void FreeKey(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/, void* /*argp*/) {
  delete static_cast<std::string*>(ptr);
}

struct Indexes {
  int ctx;
  int ssl;
};

// Process-wide ex_data slots (thread-safe static initialisation: workers may race here).
const Indexes& Slots() {
  static const Indexes slots = {
      SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, FreeCache),
      SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, FreeKey),
  };
  return slots;
}

SessionCache* CacheOf(SSL_CTX* ctx) { return static_cast<SessionCache*>(SSL_CTX_get_ex_data(ctx, Slots().ctx)); }

const std::string* KeyOf(SSL* ssl) { return static_cast<const std::string*>(SSL_get_ex_data(ssl, Slots().ssl)); }

// A session (or TLS 1.3 ticket) the upstream issued: kept for the next connection with the same key.
int NewSession(SSL* ssl, SSL_SESSION* sess) {
  const std::string* key = KeyOf(ssl);
  SessionCache* cache = CacheOf(SSL_get_SSL_CTX(ssl));
  if (key == nullptr || key->empty() || cache == nullptr || SSL_SESSION_is_resumable(sess) != 1) return 0;
  // A copy: SSL_free of a connection that ends without close_notify marks its own session
  // not resumable (SSL_CTX_remove_session), and that session object would be this one.
  SSL_SESSION* copy = SSL_SESSION_dup(sess);
  if (copy != nullptr) cache->Put(*key, copy);
  return 0;  // OpenSSL keeps (and frees) its own reference
}

SSL* ConnArg(const Napi::CallbackInfo& info) {
  SSL* ssl = info.Length() > 0 ? TlsConnSsl(info[0]) : nullptr;
  if (ssl == nullptr && !info.Env().IsExceptionPending()) {
    Napi::TypeError::New(info.Env(), "conn must be a live TlsConn").ThrowAsJavaScriptException();
  }
  return ssl;
}

Napi::Value Setup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SSL* ssl = ConnArg(info);
  if (ssl == nullptr) return env.Undefined();
  SSL_CTX* ctx = SSL_get_SSL_CTX(ssl);
  SessionCache* cache = CacheOf(ctx);
  if (cache == nullptr) {
    cache = new SessionCache();
    if (SSL_CTX_set_ex_data(ctx, Slots().ctx, cache) != 1) {
      delete cache;
      cache = nullptr;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  }
  // TlsConn's constructor clears the context's session callbacks (they are Node's): set ours again.
  SSL_CTX_sess_set_new_cb(ctx, NewSession);
  // The chain is verified whatever the mode; the caller reads the verdict after the handshake.
  SSL_set_verify(ssl, SSL_VERIFY_NONE, nullptr);
  if (info.Length() > 1 && info[1].IsString()) {
    std::string sni = info[1].As<Napi::String>().Utf8Value();
    if (!sni.empty() && SSL_set_tlsext_host_name(ssl, sni.c_str()) != 1) {
      ERR_clear_error();
      NAPI_THROW(Napi::Error::New(env, "invalid SNI name"), env.Undefined());
    }
  }
  if (info.Length() > 2 && info[2].IsTypedArray()) {
    Napi::Uint8Array a = info[2].As<Napi::Uint8Array>();
    if (a.ByteLength() > 0 && SSL_set_alpn_protos(ssl, a.Data(), static_cast<unsigned int>(a.ByteLength())) != 0) {
      ERR_clear_error();
      NAPI_THROW(Napi::Error::New(env, "invalid ALPN list"), env.Undefined());
    }
  }
  bool offered = false;
  if (info.Length() > 3 && info[3].IsString()) {
    std::string key = info[3].As<Napi::String>().Utf8Value();
    if (!key.empty()) {
      SSL_SESSION* s = cache != nullptr ? cache->Get(key) : nullptr;
      // A copy for the same reason (this connection may end without close_notify).
      SSL_SESSION* copy = s != nullptr ? SSL_SESSION_dup(s) : nullptr;
      if (copy != nullptr) {
        offered = SSL_set_session(ssl, copy) == 1;
        SSL_SESSION_free(copy);  // the SSL holds its own reference
      }
      auto* owned = new std::string(std::move(key));
      if (SSL_set_ex_data(ssl, Slots().ssl, owned) != 1) delete owned;
    }
  }
  ERR_clear_error();
  return Napi::Boolean::New(env, offered);
}

Napi::Value Forget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SSL_CTX* ctx = SslCtxArg(info, 0);
  if (ctx == nullptr) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsString()) NAPI_THROW(Napi::TypeError::New(env, "key must be a string"), env.Undefined());
  SessionCache* cache = CacheOf(ctx);
  if (cache != nullptr) cache->Drop(info[1].As<Napi::String>().Utf8Value());
  return env.Undefined();
}

Napi::Value Sessions(const Napi::CallbackInfo& info) {
  SSL_CTX* ctx = SslCtxArg(info, 0);
  if (ctx == nullptr) return info.Env().Undefined();
  SessionCache* cache = CacheOf(ctx);
  return Napi::Number::New(info.Env(), cache != nullptr ? static_cast<double>(cache->Size()) : 0);
}

Napi::Value VerifyErrorString(const Napi::CallbackInfo& info) {
  int64_t code = IntArg(info, 0, "code", 0, INT32_MAX);
  return Napi::String::New(info.Env(), X509_verify_cert_error_string(static_cast<long>(code)));
}

}  // namespace

void RegisterTlsClient(Napi::Env env, Napi::Object exports) {
  exports.Set("tlsClientSetup", Napi::Function::New(env, Setup, "tlsClientSetup"));
  exports.Set("tlsClientForget", Napi::Function::New(env, Forget, "tlsClientForget"));
  exports.Set("tlsClientSessions", Napi::Function::New(env, Sessions, "tlsClientSessions"));
  exports.Set("tlsVerifyErrorString", Napi::Function::New(env, VerifyErrorString, "tlsVerifyErrorString"));
}

}  // namespace outrigger
