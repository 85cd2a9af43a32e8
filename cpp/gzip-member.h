// One gzip member inflated step by step, with ISA-L's igzip when its headers were there at build time
// (about twice zlib's speed), else with the zlib Node itself exports. Used by the layer gunzip
// (layer-gunzip.cc) and the native layer extractor (layer-extract.cc).
#pragma once
#include <stdint.h>
#include <string.h>

#include <memory>
#include <string>

#ifdef NSBOX_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#else
#include <zlib.h>
#endif

namespace nsbox {

// One gzip member at a time; Step() reports how far it got. Backend-specific, nothing else is.
class Member {
 public:
  enum Result { kProgress, kEnd, kError };

#ifdef NSBOX_HAVE_ISAL
  static const char* Backend() { return "isa-l"; }
  Member() : s_(new inflate_state) { Reset(); }
  void Reset() {
    isal_inflate_init(s_.get());
    s_->crc_flag = ISAL_GZIP;
  }
  Result Step(const uint8_t* in, size_t in_len, uint8_t* out, size_t out_len, size_t* used, size_t* made) {
    s_->next_in = const_cast<uint8_t*>(in);
    s_->avail_in = static_cast<uint32_t>(in_len);
    s_->next_out = out;
    s_->avail_out = static_cast<uint32_t>(out_len);
    int rc = isal_inflate(s_.get());
    *used = in_len - s_->avail_in;
    *made = out_len - s_->avail_out;
    if (rc < 0) {
      error_ = rc == ISAL_INCORRECT_CHECKSUM ? "incorrect data check" : rc == ISAL_INVALID_WRAPPER ? "incorrect header check" : "invalid deflate data";
      return kError;
    }
    return s_->block_state == ISAL_BLOCK_FINISH ? kEnd : kProgress;
  }

 private:
  std::unique_ptr<inflate_state> s_;
#else
  static const char* Backend() { return "zlib"; }
  Member() {
    memset(&z_, 0, sizeof z_);
    ok_ = inflateInit2(&z_, 16 + MAX_WBITS) == Z_OK;
  }
  ~Member() {
    if (ok_) inflateEnd(&z_);
  }
  void Reset() {
    if (ok_) inflateReset(&z_);
  }
  Result Step(const uint8_t* in, size_t in_len, uint8_t* out, size_t out_len, size_t* used, size_t* made) {
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
  z_stream z_;
  bool ok_;
#endif

 public:
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

}  // namespace nsbox
