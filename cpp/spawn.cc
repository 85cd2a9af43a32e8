// spawn(plan) and enter(plan): the plan read from JS, then the spawn core (spawn-core.cc) on the thread pool.
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "addon-data.h"
#include "errors.h"
#include "plan-parse.h"
#include "plan.h"
#include "spawn-core.h"

namespace nsbox {
namespace {

// ---- plan parsing (main thread): plan-parse.h over JS values ----

struct JsSource {
  static Napi::Value Get(const Napi::Value& o, const char* key) { return o.As<Napi::Object>().Get(key); }
  std::string Str(const Napi::Value& o, const char* key) const {
    Napi::Value v = Get(o, key);
    return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  }
  double Num(const Napi::Value& o, const char* key, double def) const {
    Napi::Value v = Get(o, key);
    return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : def;
  }
  bool Bool(const Napi::Value& o, const char* key, bool def) const {
    Napi::Value v = Get(o, key);
    return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : def;
  }
  std::vector<std::string> StrList(const Napi::Value& o, const char* key) const {
    std::vector<std::string> out;
    Napi::Value v = Get(o, key);
    if (!v.IsArray()) return out;
    Napi::Array a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value e = a.Get(i);
      if (e.IsString()) out.push_back(e.As<Napi::String>().Utf8Value());
    }
    return out;
  }
  bool Bytes(const Napi::Value& o, const char* key, std::string* out) const {
    Napi::Value v = Get(o, key);
    if (!v.IsBuffer()) return false;
    Napi::Buffer<char> b = v.As<Napi::Buffer<char>>();
    out->assign(b.Data(), b.Length());
    return true;
  }
  int Length(const Napi::Value& o, const char* key) const {
    Napi::Value v = Get(o, key);
    return v.IsArray() ? static_cast<int>(v.As<Napi::Array>().Length()) : -1;
  }
  Napi::Value At(const Napi::Value& o, const char* key, int i) const {
    return Get(o, key).As<Napi::Array>().Get(static_cast<uint32_t>(i));
  }
  bool IsObject(const Napi::Value& v) const { return v.IsObject(); }
  double NumAt(const Napi::Value& o, const char* key, int i, double def) const {
    Napi::Value v = At(o, key, i);
    return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : def;
  }
};

// ---- spawn on the thread pool ----

class SpawnWorker : public Napi::AsyncWorker {
 public:
  SpawnWorker(Napi::Env env, Plan plan)
      : Napi::AsyncWorker(env, "nsbox.spawn"), plan_(std::move(plan)), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { ok_ = SpawnProcess(plan_, &spawned_, &fail_); }

  void OnOK() override {
    Napi::Env env = Env();
    if (!ok_) {
      deferred_.Reject(MakeSysError(env, fail_.err, fail_.syscall, fail_.path, fail_.what).Value());
      return;
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("pid", Napi::Number::New(env, spawned_.pid));
    r.Set("pidfd", Napi::Number::New(env, spawned_.pidfd.release()));
    deferred_.Resolve(r);
  }

 private:
  Plan plan_;
  Napi::Promise::Deferred deferred_;
  bool ok_ = false;
  Spawned spawned_;
  SpawnFailure fail_;
};

Napi::Value Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 1 && info[0].IsObject(), "spawn(plan): plan must be an object");
  Plan plan;
  std::string bad;
  if (!ParsePlan(JsSource{}, info[0], &plan, &bad)) {
    Napi::TypeError::New(env, bad).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* worker = new SpawnWorker(env, std::move(plan));
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

// spawnSync(plan) -> { pid, pidfd }: the same, on the calling thread, which waits for the child's
// execve. For a process that has nothing else to do meanwhile (the quick `run --rm`): the thread
// pool's threads start on its first use, which cost more than the wait. Every signal is blocked
// across the clone, as on a pool thread (libuv blocks them there): the child, in our memory until
// its execve, must never run a handler of ours; it unblocks them once it has reset them.
Napi::Value SpawnSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 1 && info[0].IsObject(), "spawnSync(plan): plan must be an object");
  Plan plan;
  std::string bad;
  if (!ParsePlan(JsSource{}, info[0], &plan, &bad)) {
    Napi::TypeError::New(env, bad).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Spawned spawned;
  SpawnFailure fail;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  bool ok = SpawnProcess(plan, &spawned, &fail);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (!ok) {
    MakeSysError(env, fail.err, fail.syscall, fail.path, fail.what).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("pid", Napi::Number::New(env, spawned.pid));
  r.Set("pidfd", Napi::Number::New(env, spawned.pidfd.release()));
  return r;
}

// pipe() -> [readFd, writeFd], both close-on-exec: stdio for a container's process.
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) {
    MakeSysError(env, errno, "pipe2", "").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Number::New(env, fds[0]));
  a.Set(1u, Napi::Number::New(env, fds[1]));
  return a;
}

}  // namespace

void InitSpawn(Napi::Env env, Napi::Object exports) {
  exports.Set("spawn", Napi::Function::New(env, Spawn, "spawn"));
  exports.Set("spawnSync", Napi::Function::New(env, SpawnSync, "spawnSync"));
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
}

}  // namespace nsbox
