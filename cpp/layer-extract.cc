// layerExtractOpen / layerExtractRun / layerExtractClose: a whole layer unpack off the event loop, for a
// layer going into an empty directory (what a pull and the store's unpack do). Each run call takes the
// next compressed bytes of the blob and, on the thread pool: inflates them (gzip; or takes them as
// they are for a plain tar), hashes the tar (the diff id), parses it (ustar, GNU, pax) and applies
// every entry under the layer root's fd — directories, files (openat O_CREAT|O_EXCL|O_NOFOLLOW, write,
// fchown, xattrs, fchmod, futimens), symlinks, hard links, devices, fifos, OCI whiteouts as overlayfs
// ones — then, at the end, the directories' owners, modes and times, deepest first.
//
// The rules are lib/storage/layer-writer.ts's, with the same messages: a name is cleaned (no NUL, no
// absolute path, no "..", no over-long component) and every parent directory must be a real
// directory of this layer. Since the root was empty and only this unpack writes into it, the
// extractor knows what every path is (directory, symlink, anything else) from what it made itself,
// so it needs no lstat to know that a parent is no symlink or what an entry replaces.
// Messages come without the "layer …: " prefix, which lib/storage/native-unpack.ts adds.
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "addon-data.h"
#include "errors.h"
#include "file-meta.h"
#include "gzip-member.h"
#include "unique-fd.h"

namespace nsbox {
namespace {

constexpr size_t kBlock = 512;
constexpr size_t kOut = 256 << 10;
constexpr size_t kMaxMeta = 1 << 20;
constexpr size_t kNameMax = 255;
constexpr size_t kPathMax = 4000;

using Xattrs = std::vector<std::pair<std::string, std::string>>;

struct Pax {
  bool has_path = false, has_linkpath = false, has_size = false, has_uid = false, has_gid = false, has_mtime = false, has_atime = false;
  bool sparse = false;
  std::string path, linkpath;
  uint64_t size = 0;
  int64_t uid = 0, gid = 0;
  double mtime = 0, atime = 0;
  Xattrs xattrs;
};

void SetXattr(Xattrs* x, std::string key, std::string value) {
  for (auto& kv : *x) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  }
  x->emplace_back(std::move(key), std::move(value));
}

struct Entry {
  std::string path;  // as written
  char type;         // f file, l link, s symlink, c char, b block, d dir, p fifo
  mode_t mode;
  int64_t uid, gid;
  uint64_t size;
  timespec times[2];
  std::string linkpath;
  unsigned major = 0, minor = 0;
  Xattrs xattrs;
};

// A piece of a file's body, in a tar buffer kept alive by the pointer.
struct Slice {
  std::shared_ptr<std::vector<uint8_t>> buf;
  const uint8_t* p;
  size_t n;
};

struct Job {
  Entry e;
  std::string rel;
  bool chown = false, direct = false;
  std::vector<Slice> data;
};

struct DirMeta {
  mode_t mode;
  int64_t uid, gid;
  timespec times[2];
  size_t depth;
};

struct Failure {
  std::string message;
  std::string entry;
  bool has_entry = false;
  std::string code = "ERR_LAYER";
  int err = 0;
};

std::string CString(const uint8_t* b, size_t len) {
  return std::string(reinterpret_cast<const char*>(b), strnlen(reinterpret_cast<const char*>(b), len));
}

// A tar number field: octal, or GNU base-256. Same rules and messages as tar-header.ts's numeric().
bool Numeric(const uint8_t* b, size_t len, const char* field, int64_t* out, std::string* err) {
  if (b[0] & 0x80) {
    bool negative = b[0] == 0xff;
    double v = 0;
    for (size_t i = 0; i < len; i++) {
      unsigned byte = b[i];
      if (i == 0) byte &= 0x7f;
      if (negative) byte = ~byte & 0xff;
      v = v * 256 + byte;
    }
    if (v > 9007199254740991.0) {
      *err = std::string(field) + ": number out of range";
      return false;
    }
    *out = negative ? -(static_cast<int64_t>(v) + 1) : static_cast<int64_t>(v);
    return true;
  }
  size_t s = 0, e = len;
  while (e > s && (b[e - 1] == 0 || b[e - 1] == ' ')) e--;
  while (s < e && (b[s] == ' ' || b[s] == 0)) s++;
  int64_t v = 0;
  for (size_t i = s; i < e; i++) {
    if (b[i] < '0' || b[i] > '7') {
      *err = std::string(field) + ": \"" + std::string(reinterpret_cast<const char*>(b + s), e - s) + "\" is not an octal number";
      return false;
    }
    v = v * 8 + (b[i] - '0');
  }
  *out = v;
  return true;
}

bool ChecksumOk(const uint8_t* b) {
  int64_t stored;
  std::string ignored;
  if (!Numeric(b + 148, 8, "checksum", &stored, &ignored)) return false;
  int64_t u = 0, s = 0;
  for (size_t i = 0; i < kBlock; i++) {
    unsigned byte = i >= 148 && i < 156 ? 0x20 : b[i];
    u += byte;
    s += byte > 127 ? static_cast<int64_t>(byte) - 256 : byte;
  }
  return stored == u || stored == s;
}

bool IsZero(const uint8_t* b) {
  for (size_t i = 0; i < kBlock; i++)
    if (b[i]) return false;
  return true;
}

std::string PercentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '%' && i + 2 < s.size() && isxdigit(static_cast<unsigned char>(s[i + 1])) && isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(strtol(s.substr(i + 1, 2).c_str(), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string Base64Decode(const std::string& s) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : s) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+' || c == '-') v = 62;
    else if (c == '/' || c == '_') v = 63;
    else if (c == '=') break;
    else continue;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

bool ParseUint(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 16) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

// pax records "<len> <key>=<value>\n"; as tar-header.ts's parsePax().
bool ParsePax(const std::string& data, Pax* into, bool global, std::string* err) {
  size_t pos = 0;
  while (pos < data.size()) {
    if (data[pos] == 0) break;
    size_t sp = data.find(' ', pos);
    if (sp == std::string::npos) return *err = "malformed pax record", false;
    int64_t len;
    if (!ParseUint(data.substr(pos, sp - pos), &len) || static_cast<size_t>(len) <= sp - pos || pos + len > data.size() ||
        data[pos + len - 1] != '\n')
      return *err = "malformed pax record", false;
    size_t eq = data.find('=', sp + 1);
    if (eq == std::string::npos || eq >= pos + len) return *err = "malformed pax record", false;
    std::string key = data.substr(sp + 1, eq - sp - 1);
    std::string value = data.substr(eq + 1, pos + len - 1 - eq - 1);
    pos += len;
    auto integer = [&](int64_t* out, bool* has) {
      if (value.empty()) return true;
      if (!ParseUint(value, out)) return *err = "pax " + key + ": \"" + value + "\" is not a number", false;
      *has = true;
      return true;
    };
    if (key == "path") {
      if (!global && !value.empty()) into->path = value, into->has_path = true;
    } else if (key == "linkpath") {
      if (!global && !value.empty()) into->linkpath = value, into->has_linkpath = true;
    } else if (key == "size") {
      int64_t n;
      bool has = false;
      if (!integer(&n, &has)) return false;
      if (has) into->size = static_cast<uint64_t>(n), into->has_size = true;
    } else if (key == "uid") {
      if (!integer(&into->uid, &into->has_uid)) return false;
    } else if (key == "gid") {
      if (!integer(&into->gid, &into->has_gid)) return false;
    } else if (key == "mtime" || key == "atime") {
      char* end = nullptr;
      double t = strtod(value.c_str(), &end);
      if (!value.empty() && end && *end == 0 && std::isfinite(t)) {
        if (key == "mtime") into->mtime = t, into->has_mtime = true;
        else into->atime = t, into->has_atime = true;
      }
    } else if (key.compare(0, 13, "SCHILY.xattr.") == 0) {
      SetXattr(&into->xattrs, key.substr(13), value);
    } else if (key.compare(0, 17, "LIBARCHIVE.xattr.") == 0) {
      SetXattr(&into->xattrs, PercentDecode(key.substr(17)), Base64Decode(value));
    } else if (key.compare(0, 11, "GNU.sparse.") == 0) {
      into->sparse = true;
    }
  }
  return true;
}

std::string Quote(const std::string& s) { return "\"" + s + "\""; }

class Extractor {
 public:
  Extractor(int rootfd, std::string root, bool owners, int64_t own_uid, int64_t own_gid, std::string overlay_prefix, bool gzip)
      : rootfd_(rootfd), root_(std::move(root)), owners_(owners), own_uid_(own_uid), own_gid_(own_gid),
        prefix_(std::move(overlay_prefix)), gzip_(gzip) {
    EVP_DigestInit_ex(md_, EVP_sha256(), nullptr);
    kind_[""] = 'd';
    umask_ = CurrentUmask();
  }
  ~Extractor() {
    Stop();
    EVP_MD_CTX_free(md_);
    CloseAll();
  }

  // Stops the extraction thread (whatever it was doing) and waits for it.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  void CloseAll() {
    if (rootfd_ >= 0) close(rootfd_);
    rootfd_ = -1;
  }

  bool busy = false;
  Failure failure;
  uint64_t tar_size = 0, entries = 0, content_size = 0;
  std::string digest;

  // Warnings so far (from the extraction thread), taken by the caller.
  std::vector<std::string> TakeWarnings() {
    std::lock_guard<std::mutex> lock(m_);
    return std::move(warnings_);
  }

  // The next compressed (or plain) bytes, on a thread-pool thread: inflated and hashed here, parsed and
  // applied by the extraction thread; `final` after the last ones, which waits for that thread.
  bool Feed(const std::vector<std::pair<const uint8_t*, size_t>>& input, bool final) {
    if (done_) return Report();
    if (!thread_.joinable()) thread_ = std::thread([this] { ExtractLoop(); });
    bool ok = true;
    if (!gzip_) {
      for (auto& [p, n] : input)
        if (!(ok = Push(p, n))) break;
    } else {
      for (auto& [p, n] : input) in_.insert(in_.end(), p, p + n);
      ok = Inflate();
    }
    if (ok && final && gzip_ && phase_ == kInMember) ok = Gzip("unexpected end of file");
    if (!ok || final) {
      // the end: the extraction thread finishes what it has (or stops, after a gzip error) and exits
      {
        std::lock_guard<std::mutex> lock(m_);
        end_ = true;
        if (!ok) stop_ = true;
      }
      cv_.notify_all();
      thread_.join();
      done_ = true;
      return Report();
    }
    std::lock_guard<std::mutex> lock(m_);
    return !x_failed_ || Report();
  }

 private:
  enum Phase { kInMember, kBetween, kDone };
  enum State { kHeader, kBody, kMeta, kEof };

  // After the end (or a failure of the extraction thread): the extraction's failure first (it came
  // from earlier bytes), else the inflate's, else the result.
  bool Report() {
    if (x_failed_) {
      failure = x_failure_;
      return false;
    }
    if (gz_failed_) {
      failure = gz_failure_;
      return false;
    }
    if (!digest.empty()) return true;
    entries = entries_;
    content_size = content_size_;
    tar_size = tar_size_;
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(md_, d, &n);
    static const char hex[] = "0123456789abcdef";
    digest = "sha256:";
    for (unsigned int i = 0; i < n; i++) {
      digest += hex[d[i] >> 4];
      digest += hex[d[i] & 15];
    }
    return true;
  }

  bool Gzip(const std::string& what) {
    gz_failure_.message = "gzip: " + what + " (corrupt or truncated layer)";
    gz_failed_ = true;
    return false;
  }

  // Hands tar bytes to the extraction thread (hashed here); false when it failed or was stopped.
  bool Push(const uint8_t* p, size_t n) {
    EVP_DigestUpdate(md_, p, n);
    tar_size_ += n;
    std::vector<uint8_t> buf(p, p + n);
    return PushBuffer(std::move(buf));
  }

  bool PushBuffer(std::vector<uint8_t>&& buf) {
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait(lock, [this] { return queued_ < kMaxQueued || x_failed_ || stop_; });
    if (x_failed_ || stop_) return false;
    queued_ += buf.size();
    q_.push_back(std::make_shared<std::vector<uint8_t>>(std::move(buf)));
    lock.unlock();
    cv_.notify_all();
    return true;
  }

  bool Inflate() {
    size_t pos = 0;
    bool ok = true;
    for (;;) {
      size_t left = in_.size() - pos;
      if (phase_ == kDone) {
        pos = in_.size();
        break;
      }
      if (phase_ == kBetween) {
        if (left == 0) break;
        if (in_[pos] == 0) {
          phase_ = kDone;
          continue;
        }
        member_.Reset();
        phase_ = kInMember;
      }
      std::vector<uint8_t> out(kOut);
      size_t used = 0, made = 0;
      Member::Result r = member_.Step(in_.data() + pos, left, out.data(), kOut, &used, &made);
      pos += used;
      if (made) {
        EVP_DigestUpdate(md_, out.data(), made);
        tar_size_ += made;
        out.resize(made);
        if (!PushBuffer(std::move(out))) {
          ok = false;
          break;
        }
      }
      if (r == Member::kError) {
        ok = Gzip(member_.error());
        break;
      }
      if (r == Member::kEnd) phase_ = kBetween;
      else if (used == 0 && made == 0) break;
    }
    in_.erase(in_.begin(), in_.begin() + static_cast<ptrdiff_t>(pos));
    return ok;
  }

  // The extraction thread: parses and applies what arrives, until the end (then the tar's own end
  // checks and the directories' metadata) or a stop.
  void ExtractLoop() {
    for (auto& w : writers_) w = std::thread([this] { WriterLoop(); });
    bool ok = true;
    for (;;) {
      std::shared_ptr<std::vector<uint8_t>> buf;
      {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait(lock, [this] { return !q_.empty() || end_ || stop_; });
        if (stop_) break;
        if (q_.empty()) {
          // end_ and nothing left
          lock.unlock();
          ok = TarEnd() && Finish();
          break;
        }
        buf = std::move(q_.front());
        q_.pop_front();
        queued_ -= buf->size();
      }
      cv_.notify_all();
      cur_buf_ = std::move(buf);
      if (!Tar(cur_buf_->data(), cur_buf_->size())) {
        ok = false;
        break;
      }
    }
    cur_buf_.reset();
    job_ = Job();
    StopWriters();
    if (!ok) {
      std::lock_guard<std::mutex> lock(m_);
      x_failed_ = true;
      x_failure_ = tar_failure_;
    }
    cv_.notify_all();
  }

  // ---- the tar reader (tar-reader.ts) ----

  bool ReaderError(const std::string& message, const std::string* entry = nullptr) {
    tar_failure_.message = message;
    if (entry) tar_failure_.entry = *entry, tar_failure_.has_entry = true;
    return false;
  }

  bool Tar(const uint8_t* p, size_t n) {
    size_t pos = 0;
    while (pos < n) {
      if (pad_ > 0) {
        size_t k = std::min<uint64_t>(pad_, n - pos);
        pad_ -= k;
        pos += k;
        continue;
      }
      switch (state_) {
        case kEof:
          return true;
        case kHeader: {
          const uint8_t* block;
          if (!partial_.empty() || n - pos < kBlock) {
            size_t take = std::min(kBlock - partial_.size(), n - pos);
            partial_.append(reinterpret_cast<const char*>(p + pos), take);
            pos += take;
            if (partial_.size() < kBlock) return true;
            memcpy(header_, partial_.data(), kBlock);
            partial_.clear();
            block = header_;
          } else {
            block = p + pos;
            pos += kBlock;
          }
          if (!Header(block)) return false;
          break;
        }
        case kBody: {
          size_t k = std::min<uint64_t>(remain_, n - pos);
          if (collecting_ && k) job_.data.push_back({cur_buf_, p + pos, k});
          pos += k;
          remain_ -= k;
          if (remain_ == 0) {
            pad_ = pad_after_;
            state_ = kHeader;
            if (collecting_ && !Dispatch()) return false;
          }
          break;
        }
        case kMeta: {
          size_t k = std::min<uint64_t>(remain_, n - pos);
          meta_.append(reinterpret_cast<const char*>(p + pos), k);
          pos += k;
          remain_ -= k;
          if (remain_ == 0) {
            pad_ = pad_after_;
            if (!EndMeta()) return false;
          }
          break;
        }
      }
    }
    return true;
  }

  bool TarEnd() {
    if (state_ == kEof) return true;
    if (state_ == kHeader && partial_.empty() && pad_ == 0 && meta_type_ == 0) return true;
    return ReaderError("the tar ends in the middle of " + (current_.empty() ? std::string("a header") : "entry " + Quote(current_)) +
                       " (truncated layer)");
  }

  bool EndMeta() {
    std::string data = std::move(meta_);
    meta_.clear();
    state_ = kHeader;
    char type = meta_type_;
    meta_type_ = 0;
    std::string err;
    bool ok = true;
    if (type == 'x') ok = ParsePax(data, &pax_, false, &err);
    else if (type == 'g') ok = ParsePax(data, &global_, true, &err);
    else if (type == 'L') long_name_ = CString(reinterpret_cast<const uint8_t*>(data.data()), data.size()), has_long_name_ = true;
    else if (type == 'K') long_link_ = CString(reinterpret_cast<const uint8_t*>(data.data()), data.size()), has_long_link_ = true;
    if (!ok) return ReaderError(std::string("bad ") + (type == 'g' || type == 'x' ? "pax" : "GNU long name") + " header: " + err);
    return true;
  }

  bool Header(const uint8_t* b) {
    if (IsZero(b)) {
      if (++zero_blocks_ >= 2) state_ = kEof;
      return true;
    }
    if (zero_blocks_ > 0) return ReaderError("data after an end-of-archive block");
    if (!ChecksumOk(b))
      return ReaderError("bad tar header checksum after " + (current_.empty() ? std::string("the start") : "entry " + Quote(current_)) +
                         " (not a tar, or corrupt)");
    char flag = b[156] == 0 ? '0' : static_cast<char>(b[156]);
    bool ustar = memcmp(b + 257, "ustar\0", 6) == 0;
    bool gnu = memcmp(b + 257, "ustar ", 6) == 0;
    std::string name = CString(b, 100);
    if (ustar) {
      std::string prefix = CString(b + 345, 155);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    int64_t size;
    std::string err;
    if (!Numeric(b + 124, 12, "size", &size, &err)) return ReaderError("entry " + Quote(name) + ": " + err, &name);
    if (size < 0) return ReaderError("entry " + Quote(name) + ": negative size", &name);

    if (flag == 'x' || flag == 'g' || flag == 'L' || flag == 'K') {
      if (static_cast<uint64_t>(size) > kMaxMeta)
        return ReaderError("a " + std::to_string(size) + "-byte metadata header (more than " + std::to_string(kMaxMeta) + ")");
      meta_type_ = flag;
      remain_ = static_cast<uint64_t>(size);
      pad_after_ = (kBlock - (size % kBlock)) % kBlock;
      if (size == 0) return EndMeta();
      state_ = kMeta;
      return true;
    }

    Pax pax = std::move(pax_);
    pax_ = Pax();
    std::string path = pax.has_path ? pax.path : has_long_name_ ? long_name_ : name;
    std::string linkpath = pax.has_linkpath ? pax.linkpath : has_long_link_ ? long_link_ : CString(b + 157, 100);
    has_long_name_ = has_long_link_ = false;
    long_name_.clear();
    long_link_.clear();
    current_ = path;
    uint64_t usize = pax.has_size ? pax.size : global_.has_size ? global_.size : static_cast<uint64_t>(size);

    char type = 0;
    switch (flag) {
      case '0':
      case '7':
        type = !path.empty() && path.back() == '/' ? 'd' : 'f';
        break;
      case '1': type = 'l'; break;
      case '2': type = 's'; break;
      case '3': type = 'c'; break;
      case '4': type = 'b'; break;
      case '5':
      case 'D': type = 'd'; break;
      case '6': type = 'p'; break;
      case 'V': type = 0; break;
      case 'S': return ReaderError("entry " + Quote(path) + ": GNU sparse files are not supported", &path);
      default: return ReaderError("entry " + Quote(path) + ": unsupported tar entry type " + Quote(std::string(1, flag)), &path);
    }
    if (pax.sparse || global_.sparse) return ReaderError("entry " + Quote(path) + ": pax sparse files are not supported", &path);

    state_ = usize > 0 ? kBody : kHeader;
    remain_ = usize;
    pad_after_ = (kBlock - (usize % kBlock)) % kBlock;
    if (type == 0) return true;

    Entry e;
    e.path = std::move(path);
    e.type = type;
    e.size = usize;
    e.linkpath = std::move(linkpath);
    int64_t mode, uid, gid, mtime_i, atime_i = 0, major = 0, minor = 0;
    double mtime, atime;
    bool has_atime = false;
    if (!Numeric(b + 100, 8, "mode", &mode, &err)) return ReaderError("entry " + Quote(e.path) + ": " + err, &e.path);
    if (pax.has_mtime) mtime = pax.mtime;
    else if (global_.has_mtime) mtime = global_.mtime;
    else {
      if (!Numeric(b + 136, 12, "mtime", &mtime_i, &err)) return ReaderError("entry " + Quote(e.path) + ": " + err, &e.path);
      mtime = static_cast<double>(mtime_i);
    }
    if (pax.has_atime) atime = pax.atime, has_atime = true;
    else if (global_.has_atime) atime = global_.atime, has_atime = true;
    else if (gnu) {
      if (!Numeric(b + 345, 12, "atime", &atime_i, &err)) return ReaderError("entry " + Quote(e.path) + ": " + err, &e.path);
      atime = static_cast<double>(atime_i);
      has_atime = atime_i != 0;
    }
    if (pax.has_uid) uid = pax.uid;
    else if (global_.has_uid) uid = global_.uid;
    else if (!Numeric(b + 108, 8, "uid", &uid, &err)) return ReaderError("entry " + Quote(e.path) + ": " + err, &e.path);
    if (pax.has_gid) gid = pax.gid;
    else if (global_.has_gid) gid = global_.gid;
    else if (!Numeric(b + 116, 8, "gid", &gid, &err)) return ReaderError("entry " + Quote(e.path) + ": " + err, &e.path);
    if (type == 'c' || type == 'b') {
      if (!Numeric(b + 329, 8, "devmajor", &major, &err) || !Numeric(b + 337, 8, "devminor", &minor, &err))
        return ReaderError("entry " + Quote(e.path) + ": " + err, &e.path);
    }
    e.mode = static_cast<mode_t>(mode & 07777);
    e.uid = uid;
    e.gid = gid;
    e.times[0] = ToTimespec(has_atime ? atime : mtime);
    e.times[1] = ToTimespec(mtime);
    e.major = static_cast<unsigned>(major);
    e.minor = static_cast<unsigned>(minor);
    e.xattrs = global_.xattrs;
    for (auto& kv : pax.xattrs) SetXattr(&e.xattrs, kv.first, kv.second);
    entries_++;
    return Apply(e);
  }

  // ---- the layer writer (layer-writer.ts) ----

  bool Refuse(const std::string& entry, const std::string& why) {
    tar_failure_.message = "entry " + Quote(entry) + " " + why;
    tar_failure_.entry = entry;
    tar_failure_.has_entry = true;
    tar_failure_.code = "ERR_LAYER_UNSAFE";
    return false;
  }

  bool Fail(const std::string& entry, const std::string& what, int err) {
    tar_failure_.message = "entry " + Quote(entry) + ": " + what + ": " + ErrnoName(err);
    tar_failure_.entry = entry;
    tar_failure_.has_entry = true;
    tar_failure_.code = ErrnoName(err);
    tar_failure_.err = err;
    return false;
  }

  bool Clean(const std::string& name, const std::string& entry, const char* what, std::string* rel) {
    bool own = strcmp(what, "entry") == 0;
    if (name.find('\0') != std::string::npos) return Refuse(entry, std::string("has a NUL byte in its ") + (own ? "name" : what));
    if (!name.empty() && name[0] == '/')
      return Refuse(entry, own ? "is an absolute path: it escapes the layer directory"
                               : std::string("has an absolute ") + what + " " + Quote(name) + ": it escapes the layer directory");
    rel->clear();
    size_t at = 0;
    while (at <= name.size()) {
      size_t end = name.find('/', at);
      if (end == std::string::npos) end = name.size();
      size_t len = end - at;
      if (!(len == 0 || (len == 1 && name[at] == '.'))) {
        if (len == 2 && name[at] == '.' && name[at + 1] == '.')
          return Refuse(entry, own ? "escapes the layer directory (\"..\" component)"
                                   : std::string("has ") + what + " " + Quote(name) + " that escapes the layer directory");
        if (len > kNameMax) return Refuse(entry, "has a name component longer than " + std::to_string(kNameMax) + " bytes");
        if (!rel->empty()) *rel += '/';
        rel->append(name, at, len);
      }
      at = end + 1;
    }
    if (rel->size() > kPathMax)
      return Refuse(entry, std::string("has a ") + (own ? "name" : what) + " longer than " + std::to_string(kPathMax) + " bytes");
    return true;
  }

  void Warn(std::string message) {
    std::lock_guard<std::mutex> lock(m_);
    warnings_.push_back(std::move(message));
  }

  char Kind(const std::string& rel) const {
    auto it = kind_.find(rel);
    return it == kind_.end() ? 0 : it->second;
  }

  std::string Abs(const std::string& rel) const { return rel.empty() ? root_ : root_ + "/" + rel; }

  bool ChownNeeded(int64_t uid, int64_t gid) const { return owners_ && (uid != own_uid_ || gid != own_gid_); }

  bool Parents(const std::string& rel, const std::string& entry, bool create) {
    size_t slash = rel.rfind('/');
    if (slash == std::string::npos) return true;
    if (Kind(rel.substr(0, slash)) == 'd') return true;
    size_t at = 0;
    for (;;) {
      size_t next = rel.find('/', at);
      if (next == std::string::npos) break;
      std::string dir = rel.substr(0, next);
      at = next + 1;
      char k = Kind(dir);
      if (k == 'd') continue;
      if (k == 0) {
        if (!create) return Refuse(entry, "refers to " + Quote(dir) + ", which does not exist in the layer");
        if (mkdirat(rootfd_, dir.c_str(), 0755) < 0) return Fail(entry, "mkdir " + dir, errno);
        kind_[dir] = 'd';
      } else if (k == 's') {
        return Refuse(entry, "goes through the symlink " + Quote(dir) + ": refused, a layer may not write through links");
      } else {
        return Refuse(entry, "needs " + Quote(dir) + " to be a directory, but it is not");
      }
    }
    return true;
  }

  static bool RemoveTree(int parent, const char* name) {
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return false;
    DIR* d = fdopendir(fd);
    if (!d) {
      close(fd);
      return false;
    }
    bool ok = true;
    while (dirent* de = readdir(d)) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
      if (unlinkat(fd, de->d_name, 0) == 0) continue;
      if (errno == EISDIR && RemoveTree(fd, de->d_name)) continue;
      ok = false;
      break;
    }
    int saved = errno;
    closedir(d);
    if (!ok) {
      errno = saved;
      return false;
    }
    return unlinkat(parent, name, AT_REMOVEDIR) == 0;
  }

  // Removes what is at `rel` (an entry replaces it); *kept when it is a directory kept as it is.
  bool Clear(const std::string& rel, const std::string& entry, bool keep_dir, bool* kept) {
    *kept = false;
    char k = Kind(rel);
    if (k == 0) return true;
    // a file in flight may be this path or below it
    if (!(k == 'd' && keep_dir) && !Drain()) return false;
    if (k == 'd') {
      if (keep_dir) return *kept = true;
      if (rel.empty()) return Refuse(entry, "would replace the layer root");
      if (!RemoveTree(rootfd_, rel.c_str())) return Fail(entry, "remove " + rel, errno);
      std::string prefix = rel + "/";
      for (auto it = kind_.begin(); it != kind_.end();) {
        if (it->first == rel || it->first.compare(0, prefix.size(), prefix) == 0) it = kind_.erase(it);
        else ++it;
      }
      for (auto it = dir_meta_.begin(); it != dir_meta_.end();) {
        if (it->first == rel || it->first.compare(0, prefix.size(), prefix) == 0) it = dir_meta_.erase(it);
        else ++it;
      }
      return true;
    }
    if (unlinkat(rootfd_, rel.c_str(), 0) < 0) return Fail(entry, "remove " + rel, errno);
    kind_.erase(rel);
    return true;
  }

  bool SetXattrs(const Entry& e, const std::string& rel, int fd) {
    for (auto& [key, value] : e.xattrs) {
      int rc = fd >= 0 ? fsetxattr(fd, key.c_str(), value.data(), value.size(), 0)
                       : lsetxattr(Abs(rel).c_str(), key.c_str(), value.data(), value.size(), 0);
      if (rc == 0) continue;
      int err = errno;
      if (err == EPERM || err == ENOTSUP || err == EOPNOTSUPP) {
        Warn("entry " + Quote(e.path) + ": xattr " + key + " not set (" + ErrnoName(err) + ")");
        continue;
      }
      return Fail(e.path, "set xattr " + key, err);
    }
    return true;
  }

  bool Apply(Entry& e) {
    std::string rel;
    if (!Clean(e.path, e.path, "entry", &rel)) return false;
    size_t slash = rel.rfind('/');
    std::string base = slash == std::string::npos ? rel : rel.substr(slash + 1);
    if (base.compare(0, 4, ".wh.") == 0) return Whiteout(e, rel, base);
    for (auto& kv : e.xattrs) {
      const std::string& key = kv.first;
      if (key.compare(0, 16, "trusted.overlay.") == 0 || key.compare(0, 13, "user.overlay.") == 0)
        return Refuse(e.path, "sets the overlayfs attribute " + Quote(key) + " (reserved for whiteouts)");
    }
    switch (e.type) {
      case 'd': return Dir(e, rel);
      case 'f': return File(e, rel);
      case 'l': return Hardlink(e, rel);
      case 's': return Symlink(e, rel);
      default: return Node(e, rel);
    }
  }

  bool Whiteout(const Entry& e, const std::string& rel, const std::string& base) {
    size_t slash = rel.rfind('/');
    std::string dir = slash == std::string::npos ? "" : rel.substr(0, slash);
    bool kept;
    if (base == ".wh..wh..opq") {
      if (!dir.empty() && !Parents(dir + "/x", e.path, true)) return false;
      std::string key = prefix_ + ".overlay.opaque";
      if (lsetxattr(Abs(dir).c_str(), key.c_str(), "y", 1, 0) < 0) return Fail(e.path, "mark opaque (" + key + ")", errno);
      return true;
    }
    if (base.compare(0, 8, ".wh..wh.") == 0) {
      Warn("skipped the aufs metadata entry " + Quote(e.path));
      return true;
    }
    std::string name = base.substr(4);
    if (name.empty() || name == "." || name == "..") return Refuse(e.path, "is a whiteout without a name");
    std::string target = dir.empty() ? name : dir + "/" + name;
    if (!Parents(target, e.path, true) || !Clear(target, e.path, false, &kept)) return false;
    if (mknodat(rootfd_, target.c_str(), S_IFCHR, makedev(0, 0)) < 0)
      return Fail(e.path, "whiteout " + target + " (mknod 0/0, needs root)", errno);
    kind_[target] = 'o';
    return true;
  }

  bool Dir(const Entry& e, const std::string& rel) {
    bool kept;
    if (!Parents(rel, e.path, true) || !Clear(rel, e.path, true, &kept)) return false;
    if (!kept) {
      if (mkdirat(rootfd_, rel.c_str(), 0700) < 0) return Fail(e.path, "mkdir", errno);
      kind_[rel] = 'd';
    }
    if (!SetXattrs(e, rel, -1)) return false;
    DirMeta m{e.mode, e.uid, e.gid, {e.times[0], e.times[1]}, rel.empty() ? 1 : static_cast<size_t>(std::count(rel.begin(), rel.end(), '/') + 1)};
    dir_meta_[rel] = m;
    return true;
  }

  bool File(Entry& e, const std::string& rel) {
    if (rel.empty()) return Refuse(e.path, "would replace the layer root");
    bool kept;
    if (!Parents(rel, e.path, true) || !Clear(rel, e.path, false, &kept)) return false;
    job_ = Job();
    job_.chown = ChownNeeded(e.uid, e.gid);
    // chown clears setuid and setgid, and openat would not set what the umask masks: fchmod then
    job_.direct = !job_.chown && (e.mode & 07000) == 0 && (e.mode & umask_) == 0;
    kind_[rel] = 'o';
    content_size_ += e.size;
    job_.e = std::move(e);
    job_.rel = rel;
    collecting_ = true;
    if (job_.e.size == 0) return Dispatch();
    return true;
  }

  // ---- the file writers: regular files created and filled on threads of their own ----
  //
  // The extraction thread has cleaned the path, made its parents and recorded it (kind_) before a
  // file goes to a writer; it waits for every writer (Drain) before anything that could meet a path in
  // flight: an entry replacing a path, a hard link, the directories' metadata at the end.

  bool Dispatch() {
    collecting_ = false;
    std::unique_lock<std::mutex> lock(wm_);
    wcv_.wait(lock, [this] { return (inflight_ < kMaxInflight && jobs_.size() < kMaxJobs) || w_failed_; });
    if (w_failed_) {
      tar_failure_ = w_failure_;
      return false;
    }
    inflight_ += job_.e.size;
    jobs_.push_back(std::move(job_));
    job_ = Job();
    lock.unlock();
    wcv_.notify_all();
    return true;
  }

  bool Drain() {
    std::unique_lock<std::mutex> lock(wm_);
    wcv_.wait(lock, [this] { return (jobs_.empty() && active_ == 0) || w_failed_; });
    if (w_failed_) {
      tar_failure_ = w_failure_;
      return false;
    }
    return true;
  }

  void StopWriters() {
    {
      std::lock_guard<std::mutex> lock(wm_);
      wstop_ = true;
      jobs_.clear();
    }
    wcv_.notify_all();
    for (auto& w : writers_)
      if (w.joinable()) w.join();
  }

  void WriterLoop() {
    for (;;) {
      Job j;
      {
        std::unique_lock<std::mutex> lock(wm_);
        wcv_.wait(lock, [this] { return !jobs_.empty() || wstop_; });
        if (wstop_) return;
        j = std::move(jobs_.front());
        jobs_.pop_front();
        active_++;
      }
      Failure f;
      bool ok = WriteJob(j, &f);
      {
        std::lock_guard<std::mutex> lock(wm_);
        active_--;
        inflight_ -= j.e.size;
        if (!ok && !w_failed_) {
          w_failed_ = true;
          w_failure_ = std::move(f);
        }
      }
      wcv_.notify_all();
    }
  }

  static bool JobFail(Failure* f, const Job& j, const std::string& what, int err) {
    f->message = "entry " + Quote(j.e.path) + ": " + what + ": " + ErrnoName(err);
    f->entry = j.e.path;
    f->has_entry = true;
    f->code = ErrnoName(err);
    f->err = err;
    return false;
  }

  bool WriteJob(const Job& j, Failure* f) {
    const Entry& e = j.e;
    int fd = openat(rootfd_, j.rel.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, j.direct ? e.mode : 0600);
    if (fd < 0) return JobFail(f, j, "create", errno);
    UniqueFd guard(fd);
    for (const Slice& sl : j.data) {
      const uint8_t* p = sl.p;
      size_t n = sl.n;
      while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
          if (errno == EINTR) continue;
          return JobFail(f, j, "write", errno);
        }
        p += w;
        n -= static_cast<size_t>(w);
      }
    }
    if (j.chown && fchown(fd, static_cast<uid_t>(e.uid), static_cast<gid_t>(e.gid)) < 0) return JobFail(f, j, "write", errno);
    for (auto& [key, value] : e.xattrs) {
      if (fsetxattr(fd, key.c_str(), value.data(), value.size(), 0) == 0) continue;
      int err = errno;
      if (err == EPERM || err == ENOTSUP || err == EOPNOTSUPP) {
        Warn("entry " + Quote(e.path) + ": xattr " + key + " not set (" + ErrnoName(err) + ")");
        continue;
      }
      return JobFail(f, j, "set xattr " + key, err);
    }
    if (!j.direct && fchmod(fd, e.mode) < 0) return JobFail(f, j, "write", errno);
    if (futimens(fd, e.times) < 0) return JobFail(f, j, "write", errno);
    if (close(guard.release()) < 0) return JobFail(f, j, "write", errno);
    return true;
  }

  bool Hardlink(const Entry& e, const std::string& rel) {
    if (rel.empty()) return Refuse(e.path, "would replace the layer root");
    std::string target;
    if (!Clean(e.linkpath, e.path, "hard link target", &target)) return false;
    if (target.empty()) return Refuse(e.path, "is a hard link to the layer root");
    if (!Parents(target, e.path, false)) return false;
    char k = Kind(target);
    if (k == 0) return Refuse(e.path, "is a hard link to " + Quote(e.linkpath) + ", which is not in the layer (yet)");
    if (k == 'd') return Refuse(e.path, "is a hard link to the directory " + Quote(e.linkpath));
    if (target == rel) return true;
    if (!Drain()) return false;  // the target may be a file in flight
    bool kept;
    if (!Parents(rel, e.path, true) || !Clear(rel, e.path, false, &kept)) return false;
    // linkat without AT_SYMLINK_FOLLOW: a link to a symlink is a second symlink
    if (linkat(rootfd_, target.c_str(), rootfd_, rel.c_str(), 0) < 0) return Fail(e.path, "hard link to " + target, errno);
    kind_[rel] = k;
    return true;
  }

  bool Symlink(const Entry& e, const std::string& rel) {
    if (rel.empty()) return Refuse(e.path, "would replace the layer root");
    if (e.linkpath.empty() || e.linkpath.find('\0') != std::string::npos) return Refuse(e.path, "is a symlink with an empty or invalid target");
    bool kept;
    if (!Parents(rel, e.path, true) || !Clear(rel, e.path, false, &kept)) return false;
    if (symlinkat(e.linkpath.c_str(), rootfd_, rel.c_str()) < 0) return Fail(e.path, "symlink", errno);
    kind_[rel] = 's';
    if (ChownNeeded(e.uid, e.gid) && fchownat(rootfd_, rel.c_str(), static_cast<uid_t>(e.uid), static_cast<gid_t>(e.gid), AT_SYMLINK_NOFOLLOW) < 0)
      return Fail(e.path, "symlink", errno);
    if (!SetXattrs(e, rel, -1)) return false;
    if (utimensat(rootfd_, rel.c_str(), e.times, AT_SYMLINK_NOFOLLOW) < 0) return Fail(e.path, "symlink", errno);
    return true;
  }

  bool Node(const Entry& e, const std::string& rel) {
    if (rel.empty()) return Refuse(e.path, "would replace the layer root");
    bool kept;
    if (!Parents(rel, e.path, true) || !Clear(rel, e.path, false, &kept)) return false;
    mode_t type = e.type == 'c' ? S_IFCHR : e.type == 'b' ? S_IFBLK : S_IFIFO;
    std::string what = std::string("mknod (") + (e.type == 'c' ? "char" : e.type == 'b' ? "block" : "fifo") + ")";
    if (mknodat(rootfd_, rel.c_str(), type | 0600, makedev(e.major, e.minor)) < 0) return Fail(e.path, what, errno);
    kind_[rel] = 'o';
    if (ChownNeeded(e.uid, e.gid) && fchownat(rootfd_, rel.c_str(), static_cast<uid_t>(e.uid), static_cast<gid_t>(e.gid), AT_SYMLINK_NOFOLLOW) < 0)
      return Fail(e.path, what, errno);
    if (!SetXattrs(e, rel, -1)) return false;
    // just made by mknod in a checked directory: no symlink to follow here
    if (fchmodat(rootfd_, rel.c_str(), e.mode, 0) < 0) return Fail(e.path, what, errno);
    if (utimensat(rootfd_, rel.c_str(), e.times, AT_SYMLINK_NOFOLLOW) < 0) return Fail(e.path, what, errno);
    return true;
  }

  // After the last entry: directory owners, modes and times, deepest first.
  bool Finish() {
    if (!Drain()) return false;
    std::vector<std::pair<const std::string*, const DirMeta*>> dirs;
    dirs.reserve(dir_meta_.size());
    for (auto& [rel, m] : dir_meta_)
      if (Kind(rel) == 'd') dirs.emplace_back(&rel, &m);
    std::stable_sort(dirs.begin(), dirs.end(), [](const auto& a, const auto& b) { return a.second->depth > b.second->depth; });
    for (auto& [relp, m] : dirs) {
      const std::string& rel = *relp;
      const std::string name = rel.empty() ? "." : rel;
      bool chown = ChownNeeded(m->uid, m->gid);
      uid_t u = static_cast<uid_t>(m->uid);
      gid_t g = static_cast<gid_t>(m->gid);
      if (rel.empty()) {
        if ((chown && fchown(rootfd_, u, g) < 0) || fchmod(rootfd_, m->mode) < 0 || futimens(rootfd_, m->times) < 0)
          return Fail(name, "set directory metadata", errno);
      } else {
        if ((chown && fchownat(rootfd_, rel.c_str(), u, g, AT_SYMLINK_NOFOLLOW) < 0) || fchmodat(rootfd_, rel.c_str(), m->mode, 0) < 0 ||
            utimensat(rootfd_, rel.c_str(), m->times, AT_SYMLINK_NOFOLLOW) < 0)
          return Fail(name, "set directory metadata", errno);
      }
    }
    CloseAll();
    return true;
  }

  int rootfd_;
  std::string root_;
  bool owners_;
  int64_t own_uid_, own_gid_;
  std::string prefix_;
  bool gzip_;
  mode_t umask_;
  EVP_MD_CTX* md_ = EVP_MD_CTX_new();
  Member member_;
  Phase phase_ = kInMember;
  std::vector<uint8_t> in_;
  uint64_t tar_size_ = 0;
  Failure gz_failure_;
  bool gz_failed_ = false;
  bool done_ = false;

  // between the run calls (inflate) and the extraction thread
  static constexpr size_t kMaxQueued = 16 << 20;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<std::vector<uint8_t>>> q_;
  size_t queued_ = 0;
  bool end_ = false, stop_ = false, x_failed_ = false;
  Failure x_failure_;
  std::vector<std::string> warnings_;
  std::thread thread_;

  // the extraction thread's own
  Failure tar_failure_;
  uint64_t entries_ = 0, content_size_ = 0;

  State state_ = kHeader;
  std::string partial_;
  uint8_t header_[kBlock];
  uint64_t remain_ = 0, pad_ = 0, pad_after_ = 0;
  int zero_blocks_ = 0;
  char meta_type_ = 0;
  std::string meta_;
  Pax pax_, global_;
  std::string long_name_, long_link_;
  bool has_long_name_ = false, has_long_link_ = false;
  std::string current_;

  std::unordered_map<std::string, char> kind_;  // d directory, s symlink, o anything else
  std::unordered_map<std::string, DirMeta> dir_meta_;
  std::shared_ptr<std::vector<uint8_t>> cur_buf_;  // the tar bytes being parsed
  Job job_;                                         // the regular file whose body is being read
  bool collecting_ = false;

  static constexpr int kWriters = 2;
  static constexpr size_t kMaxInflight = 32 << 20;
  static constexpr size_t kMaxJobs = 4096;
  std::thread writers_[kWriters];
  std::mutex wm_;
  std::condition_variable wcv_;
  std::deque<Job> jobs_;
  size_t inflight_ = 0;
  int active_ = 0;
  bool wstop_ = false, w_failed_ = false;
  Failure w_failure_;
};

class ExtractWorker : public Napi::AsyncWorker {
 public:
  ExtractWorker(Napi::Env env, Napi::External<Extractor> handle, std::vector<std::pair<const uint8_t*, size_t>> input, Napi::Array keep, bool final)
      : Napi::AsyncWorker(env, "nsbox.layerExtractRun"),
        x_(handle.Data()),
        handle_(Napi::Persistent(handle)),
        keep_(Napi::Persistent(keep)),
        input_(std::move(input)),
        final_(final),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { ok_ = x_->Feed(input_, final_); }

  void OnOK() override {
    Napi::Env env = Env();
    x_->busy = false;
    keep_.Reset();
    std::vector<std::string> list = x_->TakeWarnings();
    Napi::Array warnings = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) warnings.Set(i, Napi::String::New(env, list[i]));
    if (!ok_) {
      const Failure& f = x_->failure;
      Napi::Error e = Napi::Error::New(env, f.message);
      e.Set("code", Napi::String::New(env, f.code));
      if (f.has_entry) e.Set("entry", Napi::String::New(env, f.entry));
      if (f.err) e.Set("errno", Napi::Number::New(env, f.err));
      e.Set("warnings", warnings);
      deferred_.Reject(e.Value());
    } else {
      Napi::Object r = Napi::Object::New(env);
      r.Set("warnings", warnings);
      if (final_) {
        r.Set("diffId", Napi::String::New(env, x_->digest));
        r.Set("tarSize", Napi::Number::New(env, static_cast<double>(x_->tar_size)));
        r.Set("entries", Napi::Number::New(env, static_cast<double>(x_->entries)));
        r.Set("contentSize", Napi::Number::New(env, static_cast<double>(x_->content_size)));
      }
      deferred_.Resolve(r);
    }
    handle_.Reset();
  }

  void OnError(const Napi::Error& e) override {
    x_->busy = false;
    keep_.Reset();
    handle_.Reset();
    deferred_.Reject(e.Value());
  }

 private:
  Extractor* x_;
  Napi::Reference<Napi::External<Extractor>> handle_;
  Napi::Reference<Napi::Array> keep_;
  std::vector<std::pair<const uint8_t*, size_t>> input_;
  bool final_;
  Napi::Promise::Deferred deferred_;
  bool ok_ = false;
};

// layerExtractOpen(root: string, gzip: boolean, owners: boolean, ownUid, ownGid, overlayPrefix) -> handle
// The root must be an empty directory (the caller checked); it is opened here.
Napi::Value LayerExtractOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 6 && info[0].IsString() && info[1].IsBoolean() && info[2].IsBoolean() && info[3].IsNumber() &&
                           info[4].IsNumber() && info[5].IsString(),
                  "layerExtractOpen(root, gzip, owners, ownUid, ownGid, overlayPrefix)");
  std::string root = info[0].As<Napi::String>().Utf8Value();
  int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    MakeSysError(env, errno, "open", root).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* x = new Extractor(fd, root, info[2].As<Napi::Boolean>().Value(), info[3].As<Napi::Number>().Int64Value(),
                          info[4].As<Napi::Number>().Int64Value(), info[5].As<Napi::String>().Utf8Value(), info[1].As<Napi::Boolean>().Value());
  return Napi::External<Extractor>::New(env, x, [](Napi::Env, Extractor* p) { delete p; });
}

// layerExtractRun(handle, input: Buffer[], final) -> Promise<{ warnings, diffId?, tarSize?, entries?, contentSize? }>
Napi::Value LayerExtractRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 3 && info[0].IsExternal() && info[1].IsArray() && info[2].IsBoolean(),
                  "layerExtractRun(handle, input: Buffer[], final: boolean)");
  auto handle = info[0].As<Napi::External<Extractor>>();
  Extractor* x = handle.Data();
  NSBOX_CHECK_ARG(env, !x->busy, "layerExtractRun: the extractor is already running");
  Napi::Array input = info[1].As<Napi::Array>();
  std::vector<std::pair<const uint8_t*, size_t>> parts;
  parts.reserve(input.Length());
  for (uint32_t i = 0; i < input.Length(); i++) {
    Napi::Value v = input.Get(i);
    NSBOX_CHECK_ARG(env, v.IsBuffer(), "layerExtractRun: every input chunk must be a Buffer");
    Napi::Buffer<uint8_t> b = v.As<Napi::Buffer<uint8_t>>();
    parts.emplace_back(b.Data(), b.Length());
  }
  x->busy = true;
  auto* worker = new ExtractWorker(env, handle, std::move(parts), input, info[2].As<Napi::Boolean>().Value());
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

// layerExtractClose(handle): closes its fds (an unpack given up); not while a run is in flight.
Napi::Value LayerExtractClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 1 && info[0].IsExternal(), "layerExtractClose(handle)");
  Extractor* x = info[0].As<Napi::External<Extractor>>().Data();
  NSBOX_CHECK_ARG(env, !x->busy, "layerExtractClose: the extractor is running");
  x->Stop();
  x->CloseAll();
  return env.Undefined();
}

}  // namespace

void InitLayerExtract(Napi::Env env, Napi::Object exports) {
  exports.Set("layerExtractOpen", Napi::Function::New(env, LayerExtractOpen, "layerExtractOpen"));
  exports.Set("layerExtractRun", Napi::Function::New(env, LayerExtractRun, "layerExtractRun"));
  exports.Set("layerExtractClose", Napi::Function::New(env, LayerExtractClose, "layerExtractClose"));
}

}  // namespace nsbox
