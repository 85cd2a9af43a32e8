// File operations Node lacks, one syscall each: mknod (device nodes and overlayfs whiteouts in
// unpacked layers), extended attributes (overlayfs opaque dirs, file capabilities), flock (store locks), renameat2's exchange.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <string>
#include <vector>

#include "addon-data.h"
#include "args.h"
#include "errors.h"

namespace nsbox {
namespace {

// mknod(path, mode, major, minor): mode includes the file type (S_IFCHR, S_IFBLK, S_IFIFO).
Napi::Value Mknod(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0);
  if (mknod(path.c_str(), static_cast<uint32_t>(ArgNumber(info, 1)), makedev(static_cast<uint32_t>(ArgNumber(info, 2)), static_cast<uint32_t>(ArgNumber(info, 3)))) < 0)
    MakeSysError(env, errno, "mknod", path).ThrowAsJavaScriptException();
  return env.Undefined();
}

// lsetxattr(path, name, value): on the link itself, never following a symlink.
Napi::Value Lsetxattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 3 && info[2].IsBuffer(), "lsetxattr(path, name, value: Buffer)");
  std::string path = ArgString(info, 0), name = ArgString(info, 1);
  Napi::Buffer<char> value = info[2].As<Napi::Buffer<char>>();
  if (lsetxattr(path.c_str(), name.c_str(), value.Data(), value.Length(), 0) < 0)
    MakeSysError(env, errno, "lsetxattr", path, "lsetxattr " + name + " on " + path).ThrowAsJavaScriptException();
  return env.Undefined();
}

// lgetxattr(path, name) -> Buffer, or null when the attribute is absent.
Napi::Value Lgetxattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0), name = ArgString(info, 1);
  std::vector<char> buf(4096);
  ssize_t n = lgetxattr(path.c_str(), name.c_str(), buf.data(), buf.size());
  if (n < 0 && errno == ERANGE) {
    n = lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (n >= 0) {
      buf.resize(static_cast<size_t>(n));
      n = lgetxattr(path.c_str(), name.c_str(), buf.data(), buf.size());
    }
  }
  if (n < 0) {
    if (errno == ENODATA) return env.Null();
    MakeSysError(env, errno, "lgetxattr", path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Buffer<char>::Copy(env, buf.data(), static_cast<size_t>(n));
}

// llistxattr(path) -> string[]
Napi::Value Llistxattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0);
  ssize_t n = llistxattr(path.c_str(), nullptr, 0);
  std::vector<char> buf(n > 0 ? static_cast<size_t>(n) : 1);
  if (n > 0) n = llistxattr(path.c_str(), buf.data(), buf.size());
  if (n < 0) {
    if (errno == ENOTSUP) return Napi::Array::New(env, 0);
    MakeSysError(env, errno, "llistxattr", path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array out = Napi::Array::New(env);
  uint32_t k = 0;
  for (ssize_t i = 0; i < n;) {
    std::string name(buf.data() + i);
    i += static_cast<ssize_t>(name.size()) + 1;
    out.Set(k++, name);
  }
  return out;
}

// flock(fd, op): op is LOCK_SH/LOCK_EX [| LOCK_NB] or LOCK_UN. Returns false when LOCK_NB would block.
// Blocking forms block the calling thread: from the event loop, use LOCK_NB and retry.
Napi::Value Flock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 2 && info[0].IsNumber() && info[1].IsNumber(), "flock(fd, op)");
  if (flock(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value()) < 0) {
    if (errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
    MakeSysError(env, errno, "flock", "").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

// renameExchange(a, b): renameat2(RENAME_EXCHANGE), both names swapped in one step; each must exist.
// A file replaced this way is not flushed first, as ext4 flushes (auto_da_alloc) the new file of a
// rename over an existing one: a later unlink of either waits for no write-back.
Napi::Value RenameExchange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string a = ArgString(info, 0), b = ArgString(info, 1);
  if (syscall(SYS_renameat2, AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) < 0)
    MakeSysError(env, errno, "renameat2", a, "rename " + a + " with " + b + " (RENAME_EXCHANGE)").ThrowAsJavaScriptException();
  return env.Undefined();
}

// openAt2(dirfd, path, flags, mode, resolve) -> fd: openat2(2), so that a path inside a container's
// root is resolved as if that directory were `/` (RESOLVE_IN_ROOT): `..` and absolute symlinks
// stop at it, whatever the container put there. O_CLOEXEC is always added.
Napi::Value OpenAt2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 5 && info[0].IsNumber() && info[1].IsString() && info[2].IsNumber() && info[3].IsNumber() && info[4].IsNumber(),
                  "openAt2(dirfd, path, flags, mode, resolve)");
  std::string path = ArgString(info, 1);
  struct open_how how = {};
  how.flags = static_cast<uint64_t>(static_cast<uint32_t>(ArgNumber(info, 2))) | O_CLOEXEC;
  how.mode = (how.flags & (O_CREAT | O_TMPFILE)) ? static_cast<uint64_t>(ArgNumber(info, 3)) : 0;
  how.resolve = static_cast<uint64_t>(ArgNumber(info, 4));
  long fd;
  do fd = syscall(SYS_openat2, info[0].As<Napi::Number>().Int32Value(), path.c_str(), &how, sizeof how);
  while (fd < 0 && errno == EAGAIN);
  if (fd < 0) {
    MakeSysError(env, errno, "openat2", path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(fd));
}

}  // namespace

void InitFs(Napi::Env env, Napi::Object exports) {
  exports.Set("mknod", Napi::Function::New(env, Mknod, "mknod"));
  exports.Set("lsetxattr", Napi::Function::New(env, Lsetxattr, "lsetxattr"));
  exports.Set("lgetxattr", Napi::Function::New(env, Lgetxattr, "lgetxattr"));
  exports.Set("llistxattr", Napi::Function::New(env, Llistxattr, "llistxattr"));
  exports.Set("flock", Napi::Function::New(env, Flock, "flock"));
  exports.Set("openAt2", Napi::Function::New(env, OpenAt2, "openAt2"));
  exports.Set("renameExchange", Napi::Function::New(env, RenameExchange, "renameExchange"));
}

}  // namespace nsbox
