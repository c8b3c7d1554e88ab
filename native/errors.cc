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
