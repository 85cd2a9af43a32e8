// gunzipOpen / gunzipRun: a layer blob's gzip stream inflated on the thread pool, with the sha256 of
// what comes out (the layer's diff id) taken in the same pass, so that neither the inflate nor the
// hash of ~2.5x the blob's bytes runs on the event loop. Built with ISA-L's igzip when its headers are
// there at build time (about twice zlib's speed), else with the zlib Node itself exports; the sha256 is
// the OpenSSL Node exports. One call at a time per stream (lib/storage/gunzip-native.ts keeps to it):
// each call takes the next compressed chunks and gives back at most `maxOut` bytes of output.
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <memory>
#include <string>
#include <vector>

#include "addon-data.h"
#include "errors.h"
#include "gzip-member.h"

namespace nsbox {
namespace {

constexpr size_t kOutChunk = 1 << 20;

struct Gunzip {
  enum Phase { kInMember, kBetween, kDone };
  Member member;
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  std::vector<uint8_t> in;  // compressed bytes not consumed yet
  Phase phase = kInMember;
  bool busy = false;
  Gunzip() { EVP_DigestInit_ex(md, EVP_sha256(), nullptr); }
  ~Gunzip() { EVP_MD_CTX_free(md); }
};

struct OutChunk {
  uint8_t* data;
  size_t len;
};

class GunzipWorker : public Napi::AsyncWorker {
 public:
  GunzipWorker(Napi::Env env, Napi::External<Gunzip> handle, Gunzip* g, std::vector<std::pair<const uint8_t*, size_t>> input, Napi::Array keep,
               bool final, size_t max_out)
      : Napi::AsyncWorker(env, "nsbox.gunzipRun"),
        g_(g),
        handle_(Napi::Persistent(handle)),
        keep_(Napi::Persistent(keep)),
        input_(std::move(input)),
        final_(final),
        max_out_(max_out),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  ~GunzipWorker() override {
    for (OutChunk& c : out_) free(c.data);
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    for (auto& [data, len] : input_) g_->in.insert(g_->in.end(), data, data + len);
    size_t pos = 0, made_total = 0;
    uint8_t* cur = nullptr;
    size_t cur_len = 0;
    auto flush = [&]() {
      if (cur && cur_len) out_.push_back({cur, cur_len});
      else free(cur);
      cur = nullptr;
      cur_len = 0;
    };
    while (made_total < max_out_ && error_.empty()) {
      size_t left = g_->in.size() - pos;
      if (g_->phase == Gunzip::kDone) {
        pos = g_->in.size();
        break;
      }
      if (g_->phase == Gunzip::kBetween) {
        if (left == 0) break;
        // as Node's gunzip: zero padding after the last member ends the stream; anything else is a member
        if (g_->in[pos] == 0) {
          g_->phase = Gunzip::kDone;
          continue;
        }
        g_->member.Reset();
        g_->phase = Gunzip::kInMember;
      }
      if (!cur) {
        cur = static_cast<uint8_t*>(malloc(kOutChunk));
        if (!cur) {
          error_ = "out of memory";
          break;
        }
      }
      size_t used = 0, made = 0;
      Member::Result r = g_->member.Step(g_->in.data() + pos, left, cur + cur_len, kOutChunk - cur_len, &used, &made);
      if (made) EVP_DigestUpdate(g_->md, cur + cur_len, made);
      pos += used;
      cur_len += made;
      made_total += made;
      if (cur_len == kOutChunk) flush();
      if (r == Member::kError) {
        error_ = g_->member.error();
      } else if (r == Member::kEnd) {
        g_->phase = Gunzip::kBetween;
      } else if (used == 0 && made == 0) {
        break;  // needs more input
      }
    }
    flush();
    g_->in.erase(g_->in.begin(), g_->in.begin() + static_cast<ptrdiff_t>(pos));
    if (!error_.empty()) return;
    // more output may be waiting: the caller calls again with no input before it ends the stream
    more_ = made_total >= max_out_;
    if (final_ && !more_) {
      if (g_->phase == Gunzip::kInMember) {
        error_ = "unexpected end of file";
        return;
      }
      unsigned char digest[EVP_MAX_MD_SIZE];
      unsigned int n = 0;
      EVP_DigestFinal_ex(g_->md, digest, &n);
      static const char hex[] = "0123456789abcdef";
      for (unsigned int i = 0; i < n; i++) {
        digest_ += hex[digest[i] >> 4];
        digest_ += hex[digest[i] & 15];
      }
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    g_->busy = false;
    keep_.Reset();
    if (!error_.empty()) {
      Napi::Error e = Napi::Error::New(env, error_);
      e.Set("code", Napi::String::New(env, "Z_DATA_ERROR"));
      deferred_.Reject(e.Value());
      handle_.Reset();
      return;
    }
    Napi::Array chunks = Napi::Array::New(env, out_.size());
    for (size_t i = 0; i < out_.size(); i++) {
      chunks.Set(i, Napi::Buffer<uint8_t>::New(env, out_[i].data, out_[i].len, [](Napi::Env, uint8_t* p) { free(p); }));
      out_[i].data = nullptr;  // owned by the Buffer now
    }
    out_.clear();
    Napi::Object result = Napi::Object::New(env);
    result.Set("chunks", chunks);
    result.Set("more", Napi::Boolean::New(env, more_));
    if (!digest_.empty()) result.Set("digest", Napi::String::New(env, "sha256:" + digest_));
    deferred_.Resolve(result);
    handle_.Reset();
  }

  void OnError(const Napi::Error& e) override {
    g_->busy = false;
    keep_.Reset();
    handle_.Reset();
    deferred_.Reject(e.Value());
  }

 private:
  Gunzip* g_;
  Napi::Reference<Napi::External<Gunzip>> handle_;  // keeps the stream alive while the worker uses it
  Napi::Reference<Napi::Array> keep_;
  std::vector<std::pair<const uint8_t*, size_t>> input_;
  bool final_;
  size_t max_out_;
  Napi::Promise::Deferred deferred_;
  std::vector<OutChunk> out_;
  std::string error_;
  std::string digest_;
  bool more_ = false;
};

// gunzipOpen(): a new stream (an External owning its state)
Napi::Value GunzipOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::External<Gunzip> handle = Napi::External<Gunzip>::New(env, new Gunzip(), [](Napi::Env, Gunzip* g) { delete g; });
  return handle;
}

// gunzipRun(stream, input: Buffer[], final: boolean, maxOut: number)
//   -> Promise<{ chunks: Buffer[], more: boolean, digest?: 'sha256:…' }>
Napi::Value GunzipRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 4 && info[0].IsExternal() && info[1].IsArray() && info[2].IsBoolean() && info[3].IsNumber(),
                  "gunzipRun(stream, input: Buffer[], final: boolean, maxOut: number)");
  Gunzip* g = info[0].As<Napi::External<Gunzip>>().Data();
  NSBOX_CHECK_ARG(env, !g->busy, "gunzipRun: the stream is already running");
  Napi::Array input = info[1].As<Napi::Array>();
  std::vector<std::pair<const uint8_t*, size_t>> parts;
  parts.reserve(input.Length());
  for (uint32_t i = 0; i < input.Length(); i++) {
    Napi::Value v = input.Get(i);
    NSBOX_CHECK_ARG(env, v.IsBuffer(), "gunzipRun: every input chunk must be a Buffer");
    Napi::Buffer<uint8_t> b = v.As<Napi::Buffer<uint8_t>>();
    parts.emplace_back(b.Data(), b.Length());
  }
  double max_out = info[3].As<Napi::Number>().DoubleValue();
  NSBOX_CHECK_ARG(env, max_out >= 1, "gunzipRun: maxOut must be positive");
  g->busy = true;
  auto* worker = new GunzipWorker(env, info[0].As<Napi::External<Gunzip>>(), g, std::move(parts), input, info[2].As<Napi::Boolean>().Value(),
                                  static_cast<size_t>(max_out));
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

}  // namespace

void InitLayerGunzip(Napi::Env env, Napi::Object exports) {
  exports.Set("gunzipOpen", Napi::Function::New(env, GunzipOpen, "gunzipOpen"));
  exports.Set("gunzipRun", Napi::Function::New(env, GunzipRun, "gunzipRun"));
  // A getter: knowing the backend loads libisal, which no use of the addon but a gunzip needs.
  exports.DefineProperty(Napi::PropertyDescriptor::Accessor(
      env, exports, "gunzipBackend", [](const Napi::CallbackInfo& info) -> Napi::Value { return Napi::String::New(info.Env(), Member::Backend()); }, napi_enumerable));
}

}  // namespace nsbox
