// plan.bin, the file lib/runtime/plan-wire.ts writes for nsbox-shim: a small tagged binary tree
// (no JSON library needed). Layout, all integers little-endian:
//   file  := "NSBXPLAN" u32 version(=1) value
//   value := 'n' f64 | 't' | 'f' | 'z' (null)
//          | 's' u32 len, UTF-8 bytes | 'x' u32 len, raw bytes (a Buffer: the seccomp filter)
//          | 'a' u32 count, value... | 'o' u32 count, (u32 keylen, key, value)...
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace nsbox {

struct WireValue {
  char type = 'z';
  double num = 0;
  std::string str;  // 's' and 'x'
  std::vector<WireValue> items;
  std::vector<std::pair<std::string, WireValue>> fields;

  // The field named key of an object; nullptr when absent (or not an object).
  const WireValue* Field(const char* key) const;
};

bool DecodeWire(const std::string& data, WireValue* out, std::string* err);

// The value as JSON ('x' bytes as {"$bytes":"<hex>"}), for --print-plan.
std::string WireToJson(const WireValue& v);

// JSON string literal for text (control characters escaped; other bytes as they are).
std::string JsonQuote(const std::string& s);

// plan-parse.h's source adapter over a decoded value.
struct WireSource {
  static const WireValue* Get(const WireValue& o, const char* key) { return o.Field(key); }
  std::string Str(const WireValue& o, const char* key) const;
  double Num(const WireValue& o, const char* key, double def) const;
  bool Bool(const WireValue& o, const char* key, bool def) const;
  std::vector<std::string> StrList(const WireValue& o, const char* key) const;
  bool Bytes(const WireValue& o, const char* key, std::string* out) const;
  int Length(const WireValue& o, const char* key) const;
  const WireValue& At(const WireValue& o, const char* key, int i) const;
  bool IsObject(const WireValue& v) const { return v.type == 'o'; }
  double NumAt(const WireValue& o, const char* key, int i, double def) const;
};

}  // namespace nsbox
