// TLS session tickets for listener contexts, in C, on the OpenSSL that Node itself links
// (Node exports its OpenSSL 3.0 symbols; the headers come with Node's).
//
//   tlsTicketInit(secret, intervalMs)  once per process (every worker passes the same shared secret)
//   tlsContextTickets(ctx, on)         per SSL_CTX (a Node SecureContext's `context._external`):
//     on  -> SSL_CTX_set_num_tickets(1), the ticket-key callback below, and a client-hello
//            callback that issues no TLS 1.3 ticket to a client with tickets off (TicketHelloCb)
//     off -> SSL_CTX_set_num_tickets(0) (with SSL_OP_NO_TICKET OpenSSL would still send a
//            stateful TLS 1.3 ticket that nothing can resume)
//     both -> the certificate chain is built once (BuildChains below), not per handshake
//
// The key of epoch e = floor(now / interval) is HKDF-SHA256(secret, salt "outrigger tls tickets",
// info e as 8 bytes big-endian), 48 bytes: ticket key name 16, HMAC-SHA256 key 16, AES-128-CBC
// key 16 (the layout of Node's setTicketKeys, and the derivation of src/tls/tickets.ts). New
// tickets use the current epoch's key; tickets of the current and the previous epoch are accepted
// (the previous one with "renew", so the client gets a ticket under the current key). The keys
// are process-wide: one state behind a mutex, rotated inside the callback when the epoch
// changes, so there is no timer and no JS call per ticket.
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <time.h>
#include <v8.h>

#include <cstring>
#include <mutex>

#include "outrigger.h"

namespace outrigger {
namespace {

struct TicketKey {
  uint64_t epoch;
  unsigned char name[16];
  unsigned char hmac[16];
  unsigned char aes[16];
};

struct TicketState {
  std::mutex mu;
  bool ready = false;
  unsigned char secret[32];
  uint64_t interval_ms = 3600000;
  bool have_keys = false;
  TicketKey cur;
  TicketKey prev;
};

TicketState state;
EVP_CIPHER* aes_cbc = nullptr;  // fetched once (an implicit fetch per ticket costs provider lookups)

uint64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000u + static_cast<uint64_t>(ts.tv_nsec) / 1000000u;
}

bool Derive(const unsigned char* secret, uint64_t epoch, TicketKey* out) {
  unsigned char info[8];
  for (int i = 0; i < 8; i++) info[i] = static_cast<unsigned char>(epoch >> (56 - 8 * i));
  static const char kSalt[] = "outrigger tls tickets";
  unsigned char okm[48];
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return false;
  EVP_KDF_CTX* kctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (kctx == nullptr) return false;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<unsigned char*>(secret), 32),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(kSalt), sizeof(kSalt) - 1),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof(info)),
      OSSL_PARAM_construct_end(),
  };
  int ok = EVP_KDF_derive(kctx, okm, sizeof(okm), params);
  EVP_KDF_CTX_free(kctx);
  if (ok != 1) return false;
  out->epoch = epoch;
  std::memcpy(out->name, okm, 16);
  std::memcpy(out->hmac, okm + 16, 16);
  std::memcpy(out->aes, okm + 32, 16);
  return true;
}

// Copies the keys of the current and previous epoch (deriving them when the epoch changed).
bool CurrentKeys(TicketKey* cur, TicketKey* prev) {
  std::lock_guard<std::mutex> lock(state.mu);
  if (!state.ready) return false;
  uint64_t e = NowMs() / state.interval_ms;
  if (!state.have_keys || state.cur.epoch != e) {
    TicketKey c, p;
    if (state.have_keys && state.cur.epoch + 1 == e) {
      p = state.cur;
    } else if (!Derive(state.secret, e - 1, &p)) {
      return false;
    }
    if (!Derive(state.secret, e, &c)) return false;
    state.cur = c;
    state.prev = p;
    state.have_keys = true;
  }
  *cur = state.cur;
  *prev = state.prev;
  return true;
}

bool MacInit(EVP_MAC_CTX* hctx, const unsigned char* key) {
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  return EVP_MAC_init(hctx, key, 16, params) == 1;
}

// OpenSSL's ticket key callback: 1 = done, 2 = accepted but issue a new ticket, 0 = unknown key
// (full handshake), -1 = error.
int TicketKeyCb(SSL* /*ssl*/, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH], EVP_CIPHER_CTX* cctx,
                EVP_MAC_CTX* hctx, int enc) {
  TicketKey cur, prev;
  if (!CurrentKeys(&cur, &prev)) return enc ? -1 : 0;
  if (enc) {
    if (RAND_bytes(iv, 16) != 1) return -1;
    std::memcpy(key_name, cur.name, 16);
    if (EVP_EncryptInit_ex(cctx, aes_cbc, nullptr, cur.aes, iv) != 1) return -1;
    return MacInit(hctx, cur.hmac) ? 1 : -1;
  }
  const TicketKey* k = nullptr;
  if (std::memcmp(key_name, cur.name, 16) == 0) {
    k = &cur;
  } else if (std::memcmp(key_name, prev.name, 16) == 0) {
    k = &prev;
  } else {
    return 0;
  }
  if (!MacInit(hctx, k->hmac)) return -1;
  if (EVP_DecryptInit_ex(cctx, aes_cbc, nullptr, k->aes, iv) != 1) return -1;
  return k == &cur ? 1 : 2;
}

// TLS 1.3 tickets only for clients that may use them. A client that can speak TLS 1.2 offers
// the session_ticket extension (RFC 5077) when its tickets are on: an OpenSSL client leaves it
// out when the application turned tickets off (SSL_OP_NO_TICKET; checked with Node's client,
// which sends it otherwise, TLS 1.3-only or not): such a client asked for no tickets. Issuing one costs
// the server a session copy, its encoding, AES and HMAC (~6 % of a full ECDSA handshake's
// instructions) and ~250 bytes on the wire, so such a client gets none (SSL_set_num_tickets(0)
// on its connection). A client that offers TLS 1.3 only need not send the extension with its
// tickets on (it belongs to TLS 1.2): it keeps its ticket. TLS 1.2 itself is unchanged
// (OpenSSL sends a TLS 1.2 ticket only to a client that offered the extension).
bool OffersTls12(SSL* ssl) {
  const unsigned char* p = nullptr;
  size_t len = 0;
  // No supported_versions: a TLS 1.2 (or older) ClientHello.
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &p, &len) != 1) return true;
  if (len < 1 || p[0] != len - 1) return true;  // malformed: OpenSSL rejects it after this callback
  for (size_t i = 1; i + 1 < len; i += 2) {
    unsigned v = (static_cast<unsigned>(p[i]) << 8) | p[i + 1];
    if (v <= TLS1_2_VERSION && v >= TLS1_VERSION) return true;
  }
  return false;
}

int TicketHelloCb(SSL* ssl, int* /*alert*/, void* /*arg*/) {
  const unsigned char* p = nullptr;
  size_t len = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_session_ticket, &p, &len) != 1 && OffersTls12(ssl)) {
    (void)SSL_set_num_tickets(ssl, 0);
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

}  // namespace

SSL_CTX* SslCtxArg(const Napi::CallbackInfo& info, size_t i) {
  Napi::Env env = info.Env();
  // A SecureContext's `context` (its native handle; preferred: the caller holds the context
  // for the duration of the call) or that handle's `_external`.
  Napi::Value arg = info.Length() > i ? info[i] : env.Undefined();
  if (arg.IsObject() && !arg.IsExternal()) arg = arg.As<Napi::Object>().Get("_external");
  if (!arg.IsExternal()) {
    NAPI_THROW(Napi::TypeError::New(env, "expected a SecureContext's context (or context._external)"), nullptr);
  }
  // Node-API wraps its own externals (napi_get_value_external does not return the pointer of
  // an External that Node core made), so read the v8::External itself: a napi_value is the
  // address of a V8 handle slot (V8Value, outrigger.h).
  return static_cast<SSL_CTX*>(V8Value(arg).As<v8::External>()->Value());
}

namespace {

Napi::Value TicketInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::Uint8Array>().ByteLength() != 32) {
    NAPI_THROW(Napi::TypeError::New(env, "secret must be 32 bytes"), env.Undefined());
  }
  int64_t interval = IntArg(info, 1, "intervalMs", 1000, int64_t{1} << 40);
  Napi::Uint8Array s = info[0].As<Napi::Uint8Array>();
  std::lock_guard<std::mutex> lock(state.mu);
  if (aes_cbc == nullptr) {
    aes_cbc = EVP_CIPHER_fetch(nullptr, "AES-128-CBC", nullptr);
    if (aes_cbc == nullptr) NAPI_THROW(Napi::Error::New(env, "AES-128-CBC unavailable"), env.Undefined());
  }
  if (!state.ready || std::memcmp(state.secret, s.Data(), 32) != 0 || state.interval_ms != static_cast<uint64_t>(interval)) {
    std::memcpy(state.secret, s.Data(), 32);
    state.interval_ms = static_cast<uint64_t>(interval);
    state.have_keys = false;
    state.ready = true;
  }
  return env.Undefined();
}

// A certificate loaded without its chain (a leaf alone, or a self-signed one) makes OpenSSL
// build the chain it sends from the context's store on every handshake (X509_verify_cert over
// Node's root store: name lookups, string compares, locks). Built here once per context
// instead, from the same store, with the same result: what verifies goes out (without the leaf),
// what does not verify stops where the search stopped. A certificate that came with its chain
// (extra PEM blocks, set by Node) keeps it untouched. Listener contexts only (this function's
// only callers); a context whose chain does not build keeps OpenSSL's per-handshake search.
void BuildChains(SSL_CTX* ctx) {
  X509* current = SSL_CTX_get0_certificate(ctx);
  for (int r = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST); r == 1; r = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT)) {
    STACK_OF(X509)* chain = nullptr;
    if (SSL_CTX_get0_chain_certs(ctx, &chain) != 1 || chain != nullptr) continue;
    (void)SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR | SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR);
  }
  // The walk moved the context's current certificate: back to the one Node set last.
  for (int r = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST); r == 1 && SSL_CTX_get0_certificate(ctx) != current;
       r = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT)) {
  }
  ERR_clear_error();
}

Napi::Value ContextTickets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SSL_CTX* ctx = SslCtxArg(info, 0);
  if (ctx == nullptr) return env.Undefined();
  BuildChains(ctx);
  bool on = info.Length() > 1 && info[1].ToBoolean().Value();
  if (on) {
    if (!state.ready) NAPI_THROW(Napi::Error::New(env, "tlsTicketInit first"), env.Undefined());
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, TicketKeyCb);
    SSL_CTX_set_client_hello_cb(ctx, TicketHelloCb, nullptr);
  } else {
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_client_hello_cb(ctx, nullptr, nullptr);
  }
  return env.Undefined();
}

// Tests and diagnostics: the 48-byte key of an epoch (name, HMAC key, AES key).
Napi::Value TicketKeyOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t epoch = IntArg(info, 0, "epoch", 0, int64_t{1} << 50);
  unsigned char secret[32];
  {
    std::lock_guard<std::mutex> lock(state.mu);
    if (!state.ready) NAPI_THROW(Napi::Error::New(env, "tlsTicketInit first"), env.Undefined());
    std::memcpy(secret, state.secret, 32);
  }
  TicketKey k;
  if (!Derive(secret, static_cast<uint64_t>(epoch), &k)) NAPI_THROW(Napi::Error::New(env, "HKDF failed"), env.Undefined());
  Napi::Buffer<unsigned char> out = Napi::Buffer<unsigned char>::New(env, 48);
  std::memcpy(out.Data(), k.name, 16);
  std::memcpy(out.Data() + 16, k.hmac, 16);
  std::memcpy(out.Data() + 32, k.aes, 16);
  return out;
}

Napi::Value NumTickets(const Napi::CallbackInfo& info) {
  SSL_CTX* ctx = SslCtxArg(info, 0);
  if (ctx == nullptr) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), static_cast<double>(SSL_CTX_get_num_tickets(ctx)));
}

}  // namespace

void RegisterTlsTickets(Napi::Env env, Napi::Object exports) {
  exports.Set("tlsTicketInit", Napi::Function::New(env, TicketInit, "tlsTicketInit"));
  exports.Set("tlsContextTickets", Napi::Function::New(env, ContextTickets, "tlsContextTickets"));
  exports.Set("tlsTicketKey", Napi::Function::New(env, TicketKeyOf, "tlsTicketKey"));
  exports.Set("tlsNumTickets", Napi::Function::New(env, NumTickets, "tlsNumTickets"));
}

}  // namespace outrigger
