// Reading positional arguments of the raw wrappers (lib/native.ts has already checked their types).
#pragma once
#include <napi.h>

#include <string>

namespace nsbox {

inline std::string ArgString(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : std::string();
}

inline double ArgNumber(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : 0;
}

}  // namespace nsbox
