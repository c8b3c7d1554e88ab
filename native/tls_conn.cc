// TLS on memory BIOs: one SSL* per connection, driven from JS with the bytes of the
// connection's zero-copy reads, on the OpenSSL that Node itself links.
//
//   const t = new TlsConn(secureContext.context, isServer, verify, alpnWire)   SSL_new + two memory BIOs
//   t.feed(chunk, n, fd)  ciphertext chunk[0,n) in; handshake and/or SSL_read; the plaintext is
//                         written back into chunk (from 0; the ciphertext was copied into the
//                         read BIO first) and its length returned; whatever OpenSSL has to send
//                         (handshake records, alerts, tickets) is sent to fd at once
//   t.feed(chunk, n, fd, off)  the same for ciphertext at chunk[off, off+n): plaintext at off, n bytes at most
//   t.read(chunk)         more plaintext (status flag MORE after a feed/read that filled chunk)
//   t.write(buf, s, e, fd) SSL_write of buf[s,e) and the records sent to fd
//   t.take()              ciphertext the kernel did not take (EAGAIN): a Buffer, for socket.write
//   t.shutdown(fd)        close_notify
//   t.info()              version, cipher, ALPN, SNI, verify error, peer certificate DER, reused
//   t.error()             the TLS failure as an Error (code ERR_SSL_<REASON>), after a fatal status
//   t.free()              SSL_free (also done by the finalizer)
//
// Every call leaves its details in the thread's status array (tlsStatus(): Int32Array):
//   [0] flags: 1 handshake completed in this call, 2 more plaintext waits (call read()),
//              4 close_notify received, 8 fatal (TLS error, or send() failed: close the connection)
//   [1] ciphertext bytes not sent (EAGAIN): take() them and write them through the socket
//   [2] errno of a failed send(), or OpenSSL's reason code of a TLS failure
//
// Session tickets (server, TLS 1.3): OpenSSL writes them when the client's Finished completes the
// handshake. They are held in the write BIO and leave with the next records this side sends
// (the first reply, a key update answer, close_notify): one send() instead of a send of the
// tickets alone, and one wakeup less for the client. A connection that ends without any record
// from this side (destroyed before a reply or close_notify) sends no ticket.
//
// Memory per connection: the read BIO holds at most one read plus an incomplete record (every
// feed decrypts what it can); the write BIO is emptied after every call (sent, or taken by JS
// into the socket's own queue, which the Connection's watermarks bound); SSL_MODE_RELEASE_BUFFERS
// frees OpenSSL's record buffers while the connection is idle.
//
// OpenSSL's error queue is per thread and shared with Node's own crypto: every call clears
// what it leaves behind.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>

#include "outrigger.h"

namespace outrigger {
namespace {

enum Flags : int32_t { kHandshake = 1, kMore = 2, kPeerClosed = 4, kFatal = 8 };

thread_local int32_t status[4];

// The handshake goes on whatever the chain's verdict; the verdict is read afterwards.
int AcceptChain(int /*ok*/, X509_STORE_CTX* /*ctx*/) { return 1; }

class TlsConn : public Napi::ObjectWrap<TlsConn> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "TlsConn",
                       {
                           InstanceMethod<&TlsConn::Feed>("feed"),
                           InstanceMethod<&TlsConn::Read>("read"),
                           InstanceMethod<&TlsConn::Write>("write"),
                           InstanceMethod<&TlsConn::Take>("take"),
                           InstanceMethod<&TlsConn::Shutdown>("shutdown"),
                           InstanceMethod<&TlsConn::Info>("info"),
                           InstanceMethod<&TlsConn::Error>("error"),
                           InstanceMethod<&TlsConn::Free>("free"),
                       });
  }

  explicit TlsConn(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TlsConn>(info) {
    Napi::Env env = info.Env();
    SSL_CTX* ctx = SslCtxArg(info, 0);
    if (ctx == nullptr) return;
    bool server = info.Length() > 1 && info[1].ToBoolean().Value();
    // ALPN protocols a server may select, in wire format (length-prefixed names), or nothing.
    if (info.Length() > 3 && info[3].IsTypedArray()) {
      Napi::Uint8Array a = info[3].As<Napi::Uint8Array>();
      alpn_.assign(reinterpret_cast<const char*>(a.Data()), a.ByteLength());
    }
    // Client certificates (server side): 1 ask for one, 2 also fail the handshake without one.
    // The chain is checked by OpenSSL against the context's CA; the result is read after the
    // handshake (info().verifyResult), as Node does.
    int64_t verify = info.Length() > 2 ? IntArg(info, 2, "verify", 0, 2) : 0;
    ERR_clear_error();
    ssl_ = SSL_new(ctx);
    BIO* rbio = BIO_new(BIO_s_mem());
    BIO* wbio = BIO_new(BIO_s_mem());
    if (ssl_ == nullptr || rbio == nullptr || wbio == nullptr) {
      BIO_free(rbio);
      BIO_free(wbio);
      ERR_clear_error();
      NAPI_THROW_VOID(Napi::Error::New(env, "SSL_new failed"));
    }
    // An empty memory BIO reports "retry" instead of EOF.
    BIO_set_mem_eof_return(rbio, -1);
    BIO_set_mem_eof_return(wbio, -1);
    SSL_set_bio(ssl_, rbio, wbio);
    rbio_ = rbio;
    wbio_ = wbio;
    SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
    SSL_set_app_data(ssl_, this);
    // Node installs session and SNI callbacks on a context once a TLSSocket uses it; they read
    // a TLSWrap from the SSL's app data. A context is used by one path only (src/tls/server.ts),
    // and this keeps a stray one from reading a TlsConn as a TLSWrap.
    SSL_CTX_sess_set_new_cb(ctx, nullptr);
    SSL_CTX_sess_set_get_cb(ctx, nullptr);
    SSL_CTX_set_tlsext_servername_callback(ctx, nullptr);
    if (server) SSL_CTX_set_alpn_select_cb(ctx, AlpnSelect, nullptr);
    if (verify > 0) SSL_set_verify(ssl_, SSL_VERIFY_PEER | (verify == 2 ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), AcceptChain);
    server_ = server;
    if (server) {
      SSL_set_accept_state(ssl_);
    } else {
      SSL_set_connect_state(ssl_);
    }
  }

  ~TlsConn() override { Release(); }

  SSL* ssl() const { return ssl_; }  // tls_client.cc (TlsConnSsl)

 private:
  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;  // owned by ssl_
  BIO* wbio_ = nullptr;  // owned by ssl_
  bool done_ = false;
  bool fatal_ = false;
  bool server_ = false;
  size_t held_ = 0;  // bytes at the start of the write BIO that wait for the next record (tickets)
  unsigned long last_err_ = 0;  // OpenSSL error of a TLS failure
  std::string alpn_;            // server: protocols offered (wire format)

  // Server ALPN: the first of our protocols the client offers; none in common -> no ALPN.
  static int AlpnSelect(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                        void* /*arg*/) {
    TlsConn* self = static_cast<TlsConn*>(SSL_get_app_data(ssl));
    if (self == nullptr || self->alpn_.empty()) return SSL_TLSEXT_ERR_NOACK;
    unsigned char* sel = nullptr;
    unsigned char sel_len = 0;
    int r = SSL_select_next_proto(&sel, &sel_len, reinterpret_cast<const unsigned char*>(self->alpn_.data()),
                                  static_cast<unsigned int>(self->alpn_.size()), in, inlen);
    if (r != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    *outlen = sel_len;
    return SSL_TLSEXT_ERR_OK;
  }

  void Release() {
    if (ssl_ != nullptr) {
      SSL_free(ssl_);
      ssl_ = nullptr;
    }
  }

  void Fail(int reason) {
    fatal_ = true;
    status[0] |= kFatal;
    if (status[2] == 0) status[2] = reason;
    ERR_clear_error();
  }

  // Sends what the write BIO holds to fd; what the kernel does not take stays for take().
  void Flush(int fd) {
    char* data = nullptr;
    long len = BIO_get_mem_data(wbio_, &data);
    if (held_ > 0) {
      if (static_cast<size_t>(len) <= held_) {
        status[1] = 0;  // only the held tickets: they wait for the next record
        return;
      }
      held_ = 0;  // they go first, with it
    }
    size_t off = 0;
    while (off < static_cast<size_t>(len) && fd >= 0) {
      ssize_t w = send(fd, data + off, static_cast<size_t>(len) - off, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) Fail(errno);
        break;
      }
      off += static_cast<size_t>(w);
    }
    if (off == static_cast<size_t>(len)) {
      if (len > 0) (void)BIO_reset(wbio_);
      status[1] = 0;
      return;
    }
    if (off > 0) {
      // Drop the sent prefix (rare: a short send before EAGAIN).
      char scratch[4096];
      size_t left = off;
      while (left > 0) {
        int n = BIO_read(wbio_, scratch, static_cast<int>(left < sizeof(scratch) ? left : sizeof(scratch)));
        if (n <= 0) break;
        left -= static_cast<size_t>(n);
      }
    }
    status[1] = static_cast<int32_t>(BIO_ctrl_pending(wbio_));
  }

  // After a failed SSL_* call: retry states are fine, anything else is fatal.
  void Check(int ret) {
    int e = SSL_get_error(ssl_, ret);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
    if (e == SSL_ERROR_ZERO_RETURN) {
      status[0] |= kPeerClosed;
      return;
    }
    unsigned long err = ERR_peek_error();
    if (err != 0 && last_err_ == 0) last_err_ = err;
    Fail(err != 0 ? ERR_GET_REASON(err) : -1);
  }

  // Decrypts into buf[0, cap) until it is full or nothing is left; returns the byte count.
  size_t Decrypt(uint8_t* buf, size_t cap) {
    size_t total = 0;
    while (total < cap && !fatal_) {
      size_t n = 0;
      int r = SSL_read_ex(ssl_, buf + total, cap - total, &n);
      if (r != 1) {
        Check(0);
        break;
      }
      total += n;
    }
    if (total == cap && (SSL_pending(ssl_) > 0 || BIO_ctrl_pending(rbio_) > 0)) status[0] |= kMore;
    return total;
  }

  static bool BufferArg(const Napi::CallbackInfo& info, size_t i, uint8_t** data, size_t* len) {
    if (info.Length() <= i || !info[i].IsTypedArray()) return false;
    Napi::Uint8Array a = info[i].As<Napi::Uint8Array>();
    *data = a.Data();
    *len = a.ByteLength();
    return true;
  }

  bool Live(Napi::Env env) {
    status[0] = 0;
    status[1] = 0;
    status[2] = 0;
    if (ssl_ == nullptr) NAPI_THROW(Napi::Error::New(env, "TlsConn freed"), false);
    ERR_clear_error();
    return true;
  }

  Napi::Value Feed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    uint8_t* buf;
    size_t cap;
    if (!BufferArg(info, 0, &buf, &cap)) NAPI_THROW(Napi::TypeError::New(env, "chunk must be a Buffer"), env.Undefined());
    size_t n = static_cast<size_t>(IntArg(info, 1, "n", 0, static_cast<int64_t>(cap)));
    int fd = static_cast<int>(IntArg(info, 2, "fd", -1, INT_MAX));
    if (info.Length() > 3) {
      // feed(chunk, n, fd, off): the ciphertext is chunk[off, off+n) (a read of a batch, whose
      // neighbours hold other connections' bytes) and the plaintext goes there, n bytes at most
      // (the rest: the MORE flag, read() into another buffer).
      size_t off = static_cast<size_t>(IntArg(info, 3, "off", 0, static_cast<int64_t>(cap)));
      if (n > cap - off) NAPI_THROW(Napi::RangeError::New(env, "off + n beyond the chunk"), env.Undefined());
      buf += off;
      cap = n;
    }
    if (fatal_) {
      status[0] |= kFatal;
      return Napi::Number::New(env, 0);
    }
    if (n > 0 && BIO_write(rbio_, buf, static_cast<int>(n)) != static_cast<int>(n)) Fail(-1);
    size_t out = 0;
    if (!fatal_ && !done_) {
      bool empty = BIO_ctrl_pending(wbio_) == 0;
      int r = SSL_do_handshake(ssl_);
      if (r == 1) {
        done_ = true;
        status[0] |= kHandshake;
        // A TLS 1.3 server has written its tickets and nothing else in this call: hold them.
        if (server_ && empty && SSL_version(ssl_) == TLS1_3_VERSION) held_ = BIO_ctrl_pending(wbio_);
      } else {
        Check(r);
      }
    }
    if (!fatal_ && done_) out = Decrypt(buf, cap);
    Flush(fd);
    ERR_clear_error();
    return Napi::Number::New(env, static_cast<double>(out));
  }

  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    uint8_t* buf;
    size_t cap;
    if (!BufferArg(info, 0, &buf, &cap)) NAPI_THROW(Napi::TypeError::New(env, "chunk must be a Buffer"), env.Undefined());
    int fd = static_cast<int>(IntArg(info, 1, "fd", -1, INT_MAX));
    size_t out = done_ && !fatal_ ? Decrypt(buf, cap) : 0;
    Flush(fd);  // reading can answer (key update, tickets)
    ERR_clear_error();
    return Napi::Number::New(env, static_cast<double>(out));
  }

  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    uint8_t* buf;
    size_t cap;
    if (!BufferArg(info, 0, &buf, &cap)) NAPI_THROW(Napi::TypeError::New(env, "buf must be a Buffer"), env.Undefined());
    size_t s = static_cast<size_t>(IntArg(info, 1, "start", 0, static_cast<int64_t>(cap)));
    size_t e = static_cast<size_t>(IntArg(info, 2, "end", static_cast<int64_t>(s), static_cast<int64_t>(cap)));
    int fd = static_cast<int>(IntArg(info, 3, "fd", -1, INT_MAX));
    if (!done_ || fatal_) {
      status[0] |= kFatal;
      return Napi::Number::New(env, 0);
    }
    size_t written = 0;
    if (e > s) {
      // The write BIO grows as needed, so SSL_write takes everything.
      int r = SSL_write_ex(ssl_, buf + s, e - s, &written);
      if (r != 1) Check(0);
    }
    Flush(fd);
    ERR_clear_error();
    return Napi::Number::New(env, static_cast<double>(written));
  }

  Napi::Value Take(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (ssl_ == nullptr) return Napi::Buffer<uint8_t>::New(env, 0);
    char* data = nullptr;
    long len = BIO_get_mem_data(wbio_, &data);
    // A copy only when the kernel refused bytes (EAGAIN): they join the socket's queue.
    Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t*>(data), static_cast<size_t>(len));
    (void)BIO_reset(wbio_);
    held_ = 0;
    return out;
  }

  Napi::Value Shutdown(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    int fd = static_cast<int>(IntArg(info, 0, "fd", -1, INT_MAX));
    if (done_ && !fatal_) (void)SSL_shutdown(ssl_);
    Flush(fd);
    ERR_clear_error();
    return env.Undefined();
  }

  // info()'s property names and its few distinct values (version, cipher: OpenSSL's static
  // strings), as internalized V8 strings made once per thread. A fresh name per set was
  // internalized by V8 on every set (a string-table lookup each: napi_create_reference refuses
  // a string on Node 20, so an N-API reference could not keep them), and a fresh value string
  // is hashed again by every JS lookup keyed by it (the counters' cipher map).
  enum InfoKey { kVersion, kCipher, kAlpn, kServername, kVerifyResult, kReused, kPeerDer, kInfoKeys };
  static constexpr int kInfoValues = 8;  // distinct version and cipher strings kept (there are a handful)
  struct InfoStrings {
    v8::Isolate* isolate = nullptr;
    v8::Global<v8::String> names[kInfoKeys];
    const char* value_ptr[kInfoValues] = {};
    v8::Global<v8::String> values[kInfoValues];
  };
  // The thread's strings. Never freed: a thread_local destructor would run after the thread's
  // isolate is gone; a thread that ever ran a second isolate leaves the first one's set behind.
  static InfoStrings* Strings(v8::Isolate* iso) {
    static const char* const names[kInfoKeys] = {"version", "cipher", "alpn", "servername", "verifyResult", "reused", "peerDer"};
    thread_local InfoStrings* s = nullptr;
    if (s == nullptr || s->isolate != iso) {
      s = new InfoStrings();
      s->isolate = iso;
      for (int k = 0; k < kInfoKeys; k++) {
        s->names[k].Reset(iso, v8::String::NewFromOneByte(iso, reinterpret_cast<const uint8_t*>(names[k]), v8::NewStringType::kInternalized).ToLocalChecked());
      }
    }
    return s;
  }
  // An OpenSSL static string (SSL_get_version, cipher names) as an internalized string, kept by
  // its address; past kInfoValues distinct ones, a new string each time.
  static napi_value StaticString(InfoStrings* s, const char* str) {
    v8::Isolate* iso = s->isolate;
    for (int i = 0; i < kInfoValues; i++) {
      if (s->value_ptr[i] == str) return NapiValue(s->values[i].Get(iso));
      if (s->value_ptr[i] == nullptr) {
        v8::Local<v8::String> v = v8::String::NewFromUtf8(iso, str, v8::NewStringType::kInternalized).ToLocalChecked();
        s->values[i].Reset(iso, v);
        s->value_ptr[i] = str;
        return NapiValue(v);
      }
    }
    return NapiValue(v8::String::NewFromUtf8(iso, str).ToLocalChecked());
  }
  static void SetInfo(Napi::Object& o, InfoStrings* s, InfoKey k, napi_value v) {
    napi_set_property(o.Env(), o, NapiValue(s->names[k].Get(s->isolate)), v);
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    if (ssl_ == nullptr) return o;
    InfoStrings* s = Strings(v8::Isolate::GetCurrent());
    SetInfo(o, s, kVersion, StaticString(s, SSL_get_version(ssl_)));
    const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
    // IANA name (as Node's getCipher().standardName), else OpenSSL's.
    const char* cname = c != nullptr ? SSL_CIPHER_standard_name(c) : nullptr;
    if (c != nullptr && cname == nullptr) cname = SSL_CIPHER_get_name(c);
    SetInfo(o, s, kCipher, cname != nullptr ? StaticString(s, cname) : napi_value(env.Null()));
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
    SetInfo(o, s, kAlpn, alpn_len > 0 ? Napi::Value(Napi::String::New(env, reinterpret_cast<const char*>(alpn), alpn_len)) : env.Null());
    const char* sni = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
    SetInfo(o, s, kServername, sni != nullptr ? Napi::Value(Napi::String::New(env, sni)) : env.Null());
    SetInfo(o, s, kVerifyResult, Napi::Number::New(env, static_cast<double>(SSL_get_verify_result(ssl_))));
    SetInfo(o, s, kReused, Napi::Boolean::New(env, SSL_session_reused(ssl_) == 1));
    X509* peer = SSL_get1_peer_certificate(ssl_);
    if (peer != nullptr) {
      int len = i2d_X509(peer, nullptr);
      if (len > 0) {
        Napi::Buffer<uint8_t> der = Napi::Buffer<uint8_t>::New(env, static_cast<size_t>(len));
        unsigned char* p = der.Data();
        i2d_X509(peer, &p);
        SetInfo(o, s, kPeerDer, der);
      }
      X509_free(peer);
    }
    ERR_clear_error();
    return o;
  }

  // The TLS failure as Node would name it: code ERR_SSL_<REASON>, message OpenSSL's reason text.
  Napi::Value Error(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const char* reason = last_err_ != 0 ? ERR_reason_error_string(last_err_) : nullptr;
    std::string text = reason != nullptr ? reason : "TLS failure";
    std::string code = "ERR_SSL_";
    for (char ch : text) code.push_back(ch == ' ' ? '_' : static_cast<char>(toupper(static_cast<unsigned char>(ch))));
    Napi::Error e = Napi::Error::New(env, text);
    e.Set("code", code);
    return e.Value();
  }

  Napi::Value Free(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }
};

Napi::Value StatusArray(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // The thread's status words, seen from JS without a copy; they live as long as the thread.
  napi_value ab;
  if (napi_create_external_arraybuffer(env, status, sizeof(status), nullptr, nullptr, &ab) != napi_ok) {
    NAPI_THROW(Napi::Error::New(env, "external ArrayBuffer refused"), env.Undefined());
  }
  return Napi::Int32Array::New(env, 4, Napi::ArrayBuffer(env, ab), 0);
}

}  // namespace

SSL* TlsConnSsl(const Napi::Value& v) {
  if (!v.IsObject()) return nullptr;
  TlsConn* t = TlsConn::Unwrap(v.As<Napi::Object>());
  return t != nullptr ? t->ssl() : nullptr;
}

void RegisterTlsConn(Napi::Env env, Napi::Object exports) {
  exports.Set("TlsConn", TlsConn::Init(env));
  exports.Set("tlsStatus", Napi::Function::New(env, StatusArray, "tlsStatus"));
}

}  // namespace outrigger
