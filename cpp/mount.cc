// Raw wrappers, one kernel operation each. Called in the Node process itself they change the whole
// process (its mount namespace, root, namespaces): lib/native.ts documents that for each.
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include "addon-data.h"
#include "args.h"
#include "errors.h"
#include "syscalls.h"

namespace nsbox {
namespace {

Napi::Value PivotRoot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string nr = ArgString(info, 0), old = ArgString(info, 1);
  if (sys_pivot_root(nr.c_str(), old.c_str()) < 0) MakeSysError(env, errno, "pivot_root", nr).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value Setns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (setns(static_cast<int>(ArgNumber(info, 0)), static_cast<int>(ArgNumber(info, 1))) < 0)
    MakeSysError(env, errno, "setns", "").ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value Unshare(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (unshare(static_cast<int>(ArgNumber(info, 0))) < 0) MakeSysError(env, errno, "unshare", "").ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value Mount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string src = ArgString(info, 0), tgt = ArgString(info, 1), fstype = ArgString(info, 2), data = ArgString(info, 4);
  unsigned long flags = static_cast<unsigned long>(ArgNumber(info, 3));
  if (mount(src.empty() ? nullptr : src.c_str(), tgt.c_str(), fstype.empty() ? nullptr : fstype.c_str(), flags,
            data.empty() ? nullptr : data.c_str()) < 0) {
    MakeSysError(env, errno, "mount", tgt, "mount " + (fstype.empty() ? src : fstype) + " on " + tgt)
        .ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

Napi::Value Umount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string tgt = ArgString(info, 0);
  if (umount2(tgt.c_str(), static_cast<int>(ArgNumber(info, 1))) < 0)
    MakeSysError(env, errno, "umount2", tgt).ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace

void InitMount(Napi::Env env, Napi::Object exports) {
  exports.Set("pivotRoot", Napi::Function::New(env, PivotRoot, "pivotRoot"));
  exports.Set("setns", Napi::Function::New(env, Setns, "setns"));
  exports.Set("unshare", Napi::Function::New(env, Unshare, "unshare"));
  exports.Set("mount", Napi::Function::New(env, Mount, "mount"));
  exports.Set("umount", Napi::Function::New(env, Umount, "umount"));
}

}  // namespace nsbox
