// The export table of nsbox.node. Each part registers its functions; lib/native.ts declares them.
#include <napi.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>

#include "addon-data.h"
#include "syscalls.h"

namespace nsbox {

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) {
    Napi::TypeError::New(env, "setErrorClass(ctor)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  GetData(env)->error_class = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  auto set = [&](const char* k, double v) { c.Set(k, Napi::Number::New(env, v)); };
  set("CLONE_NEWUSER", CLONE_NEWUSER);
  set("CLONE_NEWPID", CLONE_NEWPID);
  set("CLONE_NEWNS", CLONE_NEWNS);
  set("CLONE_NEWNET", CLONE_NEWNET);
  set("CLONE_NEWIPC", CLONE_NEWIPC);
  set("CLONE_NEWUTS", CLONE_NEWUTS);
  set("CLONE_NEWCGROUP", CLONE_NEWCGROUP);
  set("CLONE_NEWTIME", CLONE_NEWTIME);
  set("MS_RDONLY", MS_RDONLY);
  set("MS_NOSUID", MS_NOSUID);
  set("MS_NODEV", MS_NODEV);
  set("MS_NOEXEC", MS_NOEXEC);
  set("MS_REMOUNT", MS_REMOUNT);
  set("MS_BIND", MS_BIND);
  set("MS_REC", MS_REC);
  set("MS_PRIVATE", MS_PRIVATE);
  set("MS_SLAVE", MS_SLAVE);
  set("MS_SHARED", MS_SHARED);
  set("MS_STRICTATIME", MS_STRICTATIME);
  set("MS_RELATIME", MS_RELATIME);
  set("MNT_DETACH", MNT_DETACH);
  set("MOUNT_ATTR_RDONLY", MOUNT_ATTR_RDONLY);
  set("MOUNT_ATTR_NOSUID", MOUNT_ATTR_NOSUID);
  set("MOUNT_ATTR_NODEV", MOUNT_ATTR_NODEV);
  set("MOUNT_ATTR_NOEXEC", MOUNT_ATTR_NOEXEC);
  set("LOCK_SH", LOCK_SH);
  set("LOCK_EX", LOCK_EX);
  set("LOCK_NB", LOCK_NB);
  set("LOCK_UN", LOCK_UN);
  return c;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);  // deleted by node-addon-api at environment teardown
  // Watches hold uv handles: close them before the loop goes away.
  napi_add_env_cleanup_hook(env, [](void* arg) {
    CloseAllWatches(static_cast<AddonData*>(arg));
    CloseAllCloseWatches(static_cast<AddonData*>(arg));
    FreeNft(static_cast<AddonData*>(arg));
  }, data);
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("constants", Constants(env));
  InitSpawn(env, exports);
  InitPidfd(env, exports);
  InitCloseWatch(env, exports);
  InitPty(env, exports);
  InitMount(env, exports);
  InitFs(env, exports);
  InitFileBatch(env, exports);
  InitLayerGunzip(env, exports);
  InitLayerExtract(env, exports);
  InitSpawnProcess(env, exports);
  InitNetlink(env, exports);
  InitNetns(env, exports);
  InitFdPass(env, exports);
  InitCgroupBpf(env, exports);
  InitCgroupDirs(env, exports);
  return exports;
}

}  // namespace nsbox

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return nsbox::Init(env, exports); }

NODE_API_MODULE(nsbox, InitAddon)
