// One gzip member inflated step by step, with ISA-L's igzip when its headers were there at build time
// and libisal.so.2 loads (about twice zlib's speed), else with the zlib Node itself exports. Used by
// the layer gunzip (layer-gunzip.cc) and the native layer extractor (layer-extract.cc). libisal is
// loaded on the first use (dlopen), not linked: every other use of the addon (a quick `exec` or
// `run`) would pay for loading it (~0.6 ms).
#pragma once
#include <stdint.h>
#include <string.h>

#include <memory>
#include <string>

#include <zlib.h>
#ifdef NSBOX_HAVE_ISAL
#include <dlfcn.h>
#include <isa-l/igzip_lib.h>
#endif

namespace nsbox {

// One gzip member at a time; Step() reports how far it got. Backend-specific, nothing else is.
class Member {
 public:
  enum Result { kProgress, kEnd, kError };

  Member() {
    if (Isal()) {
      isal_.reset(new inflate_state);
    } else {
      memset(&z_, 0, sizeof z_);
      ok_ = inflateInit2(&z_, 16 + MAX_WBITS) == Z_OK;
    }
    Reset();
  }
  ~Member() {
    if (ok_) inflateEnd(&z_);
  }
  Member(const Member&) = delete;
  Member& operator=(const Member&) = delete;

  /** "isa-l" or "zlib": the one this process inflates with (loads libisal to know). */
  static const char* Backend() { return Isal() ? "isa-l" : "zlib"; }

  void Reset() {
#ifdef NSBOX_HAVE_ISAL
    if (isal_) {
      Isal()->init(isal_.get());
      isal_->crc_flag = ISAL_GZIP;
      return;
    }
#endif
    if (ok_) inflateReset(&z_);
  }

  Result Step(const uint8_t* in, size_t in_len, uint8_t* out, size_t out_len, size_t* used, size_t* made) {
#ifdef NSBOX_HAVE_ISAL
    if (isal_) {
      inflate_state* s = isal_.get();
      s->next_in = const_cast<uint8_t*>(in);
      s->avail_in = static_cast<uint32_t>(in_len);
      s->next_out = out;
      s->avail_out = static_cast<uint32_t>(out_len);
      int rc = Isal()->inflate(s);
      *used = in_len - s->avail_in;
      *made = out_len - s->avail_out;
      if (rc < 0) {
        error_ = rc == ISAL_INCORRECT_CHECKSUM ? "incorrect data check" : rc == ISAL_INVALID_WRAPPER ? "incorrect header check" : "invalid deflate data";
        return kError;
      }
      return s->block_state == ISAL_BLOCK_FINISH ? kEnd : kProgress;
    }
#endif
    if (!ok_) {
      error_ = "inflateInit2 failed";
      return kError;
    }
    z_.next_in = const_cast<Bytef*>(in);
    z_.avail_in = static_cast<uInt>(in_len);
    z_.next_out = out;
    z_.avail_out = static_cast<uInt>(out_len);
    int rc = inflate(&z_, Z_NO_FLUSH);
    *used = in_len - z_.avail_in;
    *made = out_len - z_.avail_out;
    if (rc == Z_STREAM_END) return kEnd;
    if (rc == Z_OK || rc == Z_BUF_ERROR) return kProgress;
    error_ = z_.msg ? z_.msg : "inflate failed";
    return kError;
  }

 private:
#ifdef NSBOX_HAVE_ISAL
  struct IsalApi {
    void (*init)(inflate_state*);
    int (*inflate)(inflate_state*);
  };
  // libisal's two entry points, looked up once per process (a static's thread-safe first use);
  // null when the library is not there: zlib then.
  static const IsalApi* Isal() {
    static const IsalApi* api = [] {
      static IsalApi a{};
      void* lib = dlopen("libisal.so.2", RTLD_NOW | RTLD_LOCAL);
      if (lib == nullptr) return static_cast<const IsalApi*>(nullptr);
      a.init = reinterpret_cast<void (*)(inflate_state*)>(dlsym(lib, "isal_inflate_init"));
      a.inflate = reinterpret_cast<int (*)(inflate_state*)>(dlsym(lib, "isal_inflate"));
      return a.init && a.inflate ? static_cast<const IsalApi*>(&a) : nullptr;
    }();
    return api;
  }
  std::unique_ptr<inflate_state> isal_;
#else
  static const void* Isal() { return nullptr; }
#endif
  z_stream z_{};
  bool ok_ = false;

 public:
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

}  // namespace nsbox
