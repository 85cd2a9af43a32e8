// writeFiles: many small regular files created and filled in one thread-pool hop, for the layer
// unpack. Per file, under a directory fd: openat(O_CREAT|O_EXCL|O_NOFOLLOW), write its chunks, fchown,
// fchmod, futimens, close — six syscalls that would otherwise each cost a round trip from the event
// loop. A file that needs no chown and whose mode the umask leaves as it is gets that mode from openat
// itself, without the fchmod (one syscall fewer for most files of a layer). Paths arrive already
// checked (lib/storage/layer-writer.ts); nothing here decides anything.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdio.h>

#include <cmath>
#include <string>
#include <vector>

#include "addon-data.h"
#include "errors.h"
#include "file-meta.h"
#include "unique-fd.h"

namespace nsbox {
namespace {

constexpr size_t kMetaPerFile = 6;  // mode, uid, gid, atime, mtime, chunk count

struct Chunk {
  const char* data;
  size_t len;
};

struct FileJob {
  std::string path;
  mode_t mode;
  int64_t uid, gid;
  timespec times[2];
  size_t first_chunk, chunk_count;
};

class WriteFilesWorker : public Napi::AsyncWorker {
 public:
  WriteFilesWorker(Napi::Env env, int dirfd, std::vector<FileJob> files, std::vector<Chunk> chunks, Napi::Array keep)
      : Napi::AsyncWorker(env, "nsbox.writeFiles"),
        dirfd_(dirfd),
        files_(std::move(files)),
        chunks_(std::move(chunks)),
        keep_(Napi::Persistent(keep)),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    umask_ = CurrentUmask();
    for (const FileJob& f : files_) {
      if (!WriteOne(f)) {
        failed_path_ = f.path;
        return;
      }
    }
  }

  void OnOK() override {
    keep_.Reset();
    if (err_ != 0) {
      deferred_.Reject(MakeSysError(Env(), err_, syscall_, failed_path_).Value());
      return;
    }
    deferred_.Resolve(Env().Undefined());
  }

 private:
  bool Fail(const char* syscall) {
    err_ = errno;
    syscall_ = syscall;
    return false;
  }

  bool WriteOne(const FileJob& f) {
    // chown would clear setuid and setgid, and openat would not set what the umask masks: fchmod then
    const bool direct = f.uid < 0 && f.gid < 0 && (f.mode & 07000) == 0 && (f.mode & umask_) == 0;
    UniqueFd fd(openat(dirfd_, f.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, direct ? f.mode : 0600));
    if (!fd.valid()) return Fail("openat");
    for (size_t i = f.first_chunk; i < f.first_chunk + f.chunk_count; i++) {
      const char* p = chunks_[i].data;
      size_t left = chunks_[i].len;
      while (left > 0) {
        ssize_t n = write(fd.get(), p, left);
        if (n < 0) {
          if (errno == EINTR) continue;
          return Fail("write");
        }
        p += n;
        left -= static_cast<size_t>(n);
      }
    }
    // owner before mode: chown clears the setuid and setgid bits
    if ((f.uid >= 0 || f.gid >= 0) && fchown(fd.get(), static_cast<uid_t>(f.uid), static_cast<gid_t>(f.gid)) < 0) return Fail("fchown");
    if (!direct && fchmod(fd.get(), f.mode) < 0) return Fail("fchmod");
    if (futimens(fd.get(), f.times) < 0) return Fail("futimens");
    if (close(fd.release()) < 0) return Fail("close");
    return true;
  }

  int dirfd_;
  mode_t umask_ = 07777;
  std::vector<FileJob> files_;
  std::vector<Chunk> chunks_;
  Napi::Reference<Napi::Array> keep_;  // the chunk Buffers stay alive until the worker is done
  Napi::Promise::Deferred deferred_;
  int err_ = 0;
  std::string syscall_;
  std::string failed_path_;
};

// writeFiles(dirfd, paths: NUL-separated string, meta: Float64Array (6 per file), chunks: Buffer[])
Napi::Value WriteFiles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 4 && info[0].IsNumber() && info[1].IsString() && info[2].IsTypedArray() && info[3].IsArray(),
                  "writeFiles(dirfd, paths, meta: Float64Array, chunks: Buffer[])");
  int dirfd = info[0].As<Napi::Number>().Int32Value();
  std::string paths = info[1].As<Napi::String>().Utf8Value();
  Napi::TypedArray ta = info[2].As<Napi::TypedArray>();
  NSBOX_CHECK_ARG(env, ta.TypedArrayType() == napi_float64_array, "writeFiles: meta must be a Float64Array");
  Napi::Float64Array meta = ta.As<Napi::Float64Array>();
  Napi::Array chunkArray = info[3].As<Napi::Array>();

  std::vector<Chunk> chunks;
  chunks.reserve(chunkArray.Length());
  for (uint32_t i = 0; i < chunkArray.Length(); i++) {
    Napi::Value v = chunkArray.Get(i);
    NSBOX_CHECK_ARG(env, v.IsBuffer(), "writeFiles: every chunk must be a Buffer");
    Napi::Buffer<char> b = v.As<Napi::Buffer<char>>();
    chunks.push_back({b.Data(), b.Length()});
  }

  std::vector<FileJob> files;
  size_t count = meta.ElementLength() / kMetaPerFile, at = 0, chunk = 0;
  files.reserve(count);
  for (size_t i = 0; i < count; i++) {
    size_t end = paths.find('\0', at);
    if (end == std::string::npos) end = paths.size();
    const double* m = meta.Data() + i * kMetaPerFile;
    FileJob f;
    f.path = paths.substr(at, end - at);
    f.mode = static_cast<mode_t>(m[0]);
    f.uid = static_cast<int64_t>(m[1]);
    f.gid = static_cast<int64_t>(m[2]);
    f.times[0] = ToTimespec(m[3]);
    f.times[1] = ToTimespec(m[4]);
    f.first_chunk = chunk;
    f.chunk_count = static_cast<size_t>(m[5]);
    chunk += f.chunk_count;
    NSBOX_CHECK_ARG(env, !f.path.empty() && chunk <= chunks.size(), "writeFiles: paths, meta and chunks disagree");
    files.push_back(std::move(f));
    at = end + 1;
  }

  auto* worker = new WriteFilesWorker(env, dirfd, std::move(files), std::move(chunks), chunkArray);
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

}  // namespace

void InitFileBatch(Napi::Env env, Napi::Object exports) {
  exports.Set("writeFiles", Napi::Function::New(env, WriteFiles, "writeFiles"));
}

}  // namespace nsbox
