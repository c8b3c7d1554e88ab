// Helpers shared by the primitives: errno -> JS Error with a Node-style `code`,
// and integer argument validation.
#include <string.h>

#include <cmath>
#include <string>

#include "outrigger.h"

namespace outrigger {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  const char* name = strerrorname_np(err);  // glibc >= 2.32: "EPIPE", "ECONNRESET", ...
  std::string code = name != nullptr ? name : ("E" + std::to_string(err));
  std::string msg = std::string(syscall) + " " + code + " (" + strerror(err) + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

void ExportRaw(Napi::Env env, Napi::Object exports, const char* name, v8::FunctionCallback fast, napi_callback slow) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  // Per environment (a worker loads the addon again); freed with it.
  napi_value slowFn = nullptr;
  if (slow != nullptr) NAPI_THROW_IF_FAILED_VOID(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, slow, nullptr, &slowFn));
  RawExport* x = new RawExport{env, {}};
  if (slowFn != nullptr) x->slow.Reset(isolate, V8Value(slowFn).As<v8::Function>());
  napi_add_env_cleanup_hook(env, [](void* p) { delete static_cast<RawExport*>(p); }, x);
  v8::Local<v8::FunctionTemplate> tpl = v8::FunctionTemplate::New(isolate, fast, v8::External::New(isolate, x), v8::Local<v8::Signature>(), 0,
                                                                  v8::ConstructorBehavior::kThrow);
  v8::Local<v8::Function> fn;
  if (!tpl->GetFunction(context).ToLocal(&fn)) NAPI_THROW_VOID(Napi::Error::New(env, std::string("cannot make ") + name));
  fn->SetName(V8Value(Napi::String::New(env, name)).As<v8::String>());
  exports.Set(name, Napi::Value(env, NapiValue(fn)));
}

void RawSlow(const v8::FunctionCallbackInfo<v8::Value>& info) {
  RawExport* x = static_cast<RawExport*>(info.Data().As<v8::External>()->Value());
  v8::Isolate* isolate = info.GetIsolate();
  v8::Local<v8::Value> argv[kRawSlowArgs];
  int argc = info.Length() < kRawSlowArgs ? info.Length() : kRawSlowArgs;
  for (int i = 0; i < argc; i++) argv[i] = info[i];
  v8::Local<v8::Value> r;
  if (x->slow.Get(isolate)->Call(isolate->GetCurrentContext(), info.This(), argc, argv).ToLocal(&r)) info.GetReturnValue().Set(r);
}

void RawThrowErrno(const v8::FunctionCallbackInfo<v8::Value>& info, int err, const char* syscall) {
  RawExport* x = static_cast<RawExport*>(info.Data().As<v8::External>()->Value());
  napi_value e;
  try {
    e = ErrnoError(Napi::Env(x->env), err, syscall).Value();
  } catch (const Napi::Error&) {
    return;  // (N-API could not make it: out of memory) nothing better to throw
  }
  info.GetIsolate()->ThrowException(V8Value(e));
}

int64_t IntArg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min, int64_t max) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsNumber()) {
    throw Napi::TypeError::New(env, std::string(name) + " must be a number");
  }
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || std::floor(v) != v || v < static_cast<double>(min) || v > static_cast<double>(max)) {
    throw Napi::RangeError::New(env, std::string(name) + " must be an integer in [" + std::to_string(min) + ", " +
                                         std::to_string(max) + "]");
  }
  return static_cast<int64_t>(v);
}

}  // namespace outrigger
