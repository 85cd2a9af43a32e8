#include "plan-wire.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

namespace nsbox {
namespace {

constexpr char kMagic[] = "NSBXPLAN";
constexpr uint32_t kVersion = 1;
constexpr int kMaxDepth = 16;

class Reader {
 public:
  explicit Reader(const std::string& d) : d_(d) {}
  bool Bytes(size_t n, std::string* out) {
    if (d_.size() - pos_ < n) return false;
    out->assign(d_, pos_, n);
    pos_ += n;
    return true;
  }
  bool U32(uint32_t* v) {
    if (d_.size() - pos_ < 4) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(d_.data() + pos_);
    *v = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
    pos_ += 4;
    return true;
  }
  bool F64(double* v) {
    if (d_.size() - pos_ < 8) return false;
    uint64_t bits = 0;
    for (int i = 7; i >= 0; i--) bits = (bits << 8) | static_cast<unsigned char>(d_[pos_ + i]);
    memcpy(v, &bits, sizeof bits);
    pos_ += 8;
    return true;
  }
  bool Byte(char* c) {
    if (pos_ >= d_.size()) return false;
    *c = d_[pos_++];
    return true;
  }
  bool AtEnd() const { return pos_ == d_.size(); }
  size_t Remaining() const { return d_.size() - pos_; }

 private:
  const std::string& d_;
  size_t pos_ = 0;
};

bool Decode(Reader* r, WireValue* v, int depth) {
  if (depth > kMaxDepth || !r->Byte(&v->type)) return false;
  uint32_t n = 0;
  switch (v->type) {
    case 'n': return r->F64(&v->num);
    case 't': case 'f': case 'z': return true;
    case 's': case 'x': return r->U32(&n) && r->Bytes(n, &v->str);
    case 'a':
      // Every element takes at least one byte: a count beyond what is left is a corrupt file.
      if (!r->U32(&n) || n > r->Remaining()) return false;
      v->items.resize(n);
      for (auto& e : v->items) {
        if (!Decode(r, &e, depth + 1)) return false;
      }
      return true;
    case 'o':
      if (!r->U32(&n) || n > r->Remaining()) return false;
      v->fields.resize(n);
      for (auto& f : v->fields) {
        uint32_t klen = 0;
        if (!r->U32(&klen) || !r->Bytes(klen, &f.first) || !Decode(r, &f.second, depth + 1)) return false;
      }
      return true;
    default: return false;
  }
}

}  // namespace

const WireValue* WireValue::Field(const char* key) const {
  if (type != 'o') return nullptr;
  for (const auto& f : fields) {
    if (f.first == key) return &f.second;
  }
  return nullptr;
}

bool DecodeWire(const std::string& data, WireValue* out, std::string* err) {
  Reader r(data);
  std::string magic;
  uint32_t version = 0;
  if (!r.Bytes(8, &magic) || magic != kMagic || !r.U32(&version)) {
    *err = "not an nsbox plan file";
    return false;
  }
  if (version != kVersion) {
    *err = "plan file version " + std::to_string(version) + " (this nsbox-shim reads " + std::to_string(kVersion) + ")";
    return false;
  }
  if (!Decode(&r, out, 0) || !r.AtEnd()) {
    *err = "corrupt plan file";
    return false;
  }
  return true;
}

std::string JsonQuote(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\r': o += "\\r"; break;
      case '\t': o += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          o += buf;
        } else {
          o += static_cast<char>(c);
        }
    }
  }
  return o + "\"";
}

std::string WireToJson(const WireValue& v) {
  switch (v.type) {
    case 'n': {
      char buf[32];
      snprintf(buf, sizeof buf, "%.17g", v.num);
      return buf;
    }
    case 't': return "true";
    case 'f': return "false";
    case 's': return JsonQuote(v.str);
    case 'x': {
      std::string hex;
      static const char digits[] = "0123456789abcdef";
      for (unsigned char c : v.str) {
        hex += digits[c >> 4];
        hex += digits[c & 15];
      }
      return "{\"$bytes\":\"" + hex + "\"}";
    }
    case 'a': {
      std::string o = "[";
      for (size_t i = 0; i < v.items.size(); i++) o += (i ? "," : "") + WireToJson(v.items[i]);
      return o + "]";
    }
    case 'o': {
      std::string o = "{";
      for (size_t i = 0; i < v.fields.size(); i++) {
        o += (i ? "," : "") + JsonQuote(v.fields[i].first) + ":" + WireToJson(v.fields[i].second);
      }
      return o + "}";
    }
    default: return "null";
  }
}

std::string WireSource::Str(const WireValue& o, const char* key) const {
  const WireValue* v = Get(o, key);
  return v != nullptr && v->type == 's' ? v->str : std::string();
}
double WireSource::Num(const WireValue& o, const char* key, double def) const {
  const WireValue* v = Get(o, key);
  return v != nullptr && v->type == 'n' ? v->num : def;
}
bool WireSource::Bool(const WireValue& o, const char* key, bool def) const {
  const WireValue* v = Get(o, key);
  return v != nullptr && (v->type == 't' || v->type == 'f') ? v->type == 't' : def;
}
std::vector<std::string> WireSource::StrList(const WireValue& o, const char* key) const {
  std::vector<std::string> out;
  const WireValue* v = Get(o, key);
  if (v == nullptr || v->type != 'a') return out;
  for (const auto& e : v->items) {
    if (e.type == 's') out.push_back(e.str);
  }
  return out;
}
bool WireSource::Bytes(const WireValue& o, const char* key, std::string* out) const {
  const WireValue* v = Get(o, key);
  if (v == nullptr || v->type != 'x') return false;
  *out = v->str;
  return true;
}
int WireSource::Length(const WireValue& o, const char* key) const {
  const WireValue* v = Get(o, key);
  return v != nullptr && v->type == 'a' ? static_cast<int>(v->items.size()) : -1;
}
const WireValue& WireSource::At(const WireValue& o, const char* key, int i) const {
  return Get(o, key)->items[static_cast<size_t>(i)];
}
double WireSource::NumAt(const WireValue& o, const char* key, int i, double def) const {
  const WireValue& v = At(o, key, i);
  return v.type == 'n' ? v.num : def;
}

}  // namespace nsbox
