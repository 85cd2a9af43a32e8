// The addon's side of cgroup-ops.h, for the quick `run --rm` (lib/cli/quick/run.ts): its cgroup's
// directories made in one call, and emptied and removed in one, on what lib/cgroup/native-ops.ts
// compiled when the plan was kept. Synchronous: a run's dozen mkdirs, rmdirs and small cgroupfs
// reads and writes take well under a millisecond here, against several through lib/cgroup's
// drivers in a process that has just started.
//   cgroupMake(entries: { mountpoint, mountRoot, dir, cpuset, v2 }[], controllers: string[]): void
//   cgroupRemove({ procs, freezer, freezerV2, kill, rmdirs }): void
#include <napi.h>
#include <unistd.h>

#include "addon-data.h"
#include "cgroup-ops.h"
#include "errors.h"

namespace nsbox {
namespace {

std::string StrField(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
}

bool Strings(const Napi::Value& v, std::vector<std::string>* out) {
  if (!v.IsArray()) return false;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value x = a.Get(i);
    if (!x.IsString()) return false;
    out->push_back(x.As<Napi::String>().Utf8Value());
  }
  return true;
}

void Throw(Napi::Env env, const Failure& f, const std::string& path) {
  MakeSysError(env, f.err ? f.err : EIO, "cgroup", path, f.msg).ThrowAsJavaScriptException();
}

// Makes every entry's directory; on a failure, removes the levels made so far (newest first) and throws.
Napi::Value CgroupMake(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::string> controllers;
  NSBOX_CHECK_ARG(env, info.Length() >= 2 && info[0].IsArray() && Strings(info[1], &controllers), "cgroupMake(entries, controllers)");
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<CgroupDirEntry> entries;
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value v = list.Get(i);
    NSBOX_CHECK_ARG(env, v.IsObject(), "cgroupMake: an entry is not an object");
    Napi::Object o = v.As<Napi::Object>();
    entries.push_back({StrField(o, "mountpoint"), StrField(o, "mountRoot"), StrField(o, "dir"), o.Get("cpuset").ToBoolean().Value(), o.Get("v2").ToBoolean().Value()});
  }
  std::vector<std::string> created;
  for (const auto& e : entries) {
    Failure f;
    if (MakeCgroupDir(e, controllers, &created, &f)) continue;
    for (auto it = created.rbegin(); it != created.rend(); ++it) rmdir(it->c_str());
    Throw(env, f, e.dir);
    return env.Undefined();
  }
  return env.Undefined();
}

// Kills what is left in the cgroup (none, after a container's init in its own pid namespace is
// reaped, unless a process was moved in from outside), then removes its directories.
Napi::Value CgroupRemove(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 1 && info[0].IsObject(), "cgroupRemove(set)");
  Napi::Object o = info[0].As<Napi::Object>();
  CgroupSet set;
  NSBOX_CHECK_ARG(env, Strings(o.Get("procs"), &set.procs) && o.Get("rmdirs").IsArray(), "cgroupRemove: procs and rmdirs");
  set.freezer = StrField(o, "freezer");
  set.freezer_v2 = o.Get("freezerV2").ToBoolean().Value();
  set.kill_dir = StrField(o, "kill");
  Napi::Array chains = o.Get("rmdirs").As<Napi::Array>();
  for (uint32_t i = 0; i < chains.Length(); i++) {
    std::vector<std::string> chain;
    NSBOX_CHECK_ARG(env, Strings(chains.Get(i), &chain) && !chain.empty(), "cgroupRemove: a chain is not a list of directories");
    set.rmdirs.push_back(std::move(chain));
  }
  Failure f;
  if ((!Procs(set.procs).empty() && !KillAll(set, &f)) || !RemoveCgroups(set, &f)) Throw(env, f, set.procs.empty() ? "" : set.procs[0]);
  return env.Undefined();
}

}  // namespace

void InitCgroupDirs(Napi::Env env, Napi::Object exports) {
  exports.Set("cgroupMake", Napi::Function::New(env, CgroupMake, "cgroupMake"));
  exports.Set("cgroupRemove", Napi::Function::New(env, CgroupRemove, "cgroupRemove"));
}

}  // namespace nsbox
