// Declarations shared by the Outrigger native addon's translation units:
// one Register* function per primitive, and the errno -> JS Error helper.
#ifndef OUTRIGGER_NATIVE_H_
#define OUTRIGGER_NATIVE_H_

#include <napi.h>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace outrigger {

// Builds a JS Error like Node's system errors: message "<syscall> <CODE>",
// plus properties code ("EPIPE"), errno (negative, as in Node) and syscall.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall);

// Reads argument i as an integer in [min, max]; throws a TypeError/RangeError otherwise.
int64_t IntArg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min, int64_t max);

void RegisterSlab(Napi::Env env, Napi::Object exports);
void RegisterWritev(Napi::Env env, Napi::Object exports);
void RegisterAffinity(Napi::Env env, Napi::Object exports);
void RegisterListen(Napi::Env env, Napi::Object exports);
void RegisterOrigDst(Napi::Env env, Napi::Object exports);
void RegisterFdPass(Napi::Env env, Napi::Object exports);
void RegisterSplice(Napi::Env env, Napi::Object exports);
void RegisterTlsTickets(Napi::Env env, Napi::Object exports);
void RegisterTlsConn(Napi::Env env, Napi::Object exports);
void RegisterMemory(Napi::Env env, Napi::Object exports);
void RegisterTlsClient(Napi::Env env, Napi::Object exports);
void RegisterRead(Napi::Env env, Napi::Object exports);

// The SSL* of a TlsConn (tls_conn.cc), null once freed; throws when v is not a TlsConn.
SSL* TlsConnSsl(const Napi::Value& v);

// The SSL_CTX* of a Node SecureContext (argument i is its `context`, or `context._external`); throws otherwise.
SSL_CTX* SslCtxArg(const Napi::CallbackInfo& info, size_t i);

}  // namespace outrigger

#endif  // OUTRIGGER_NATIVE_H_
