// Exit watching on the event loop: one uv_poll per pidfd, no thread per container.
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "addon-data.h"
#include "errors.h"
#include "syscalls.h"

namespace nsbox {

struct ExitWatch {
  uv_poll_t poll;
  int pidfd;
  napi_env env;
  Napi::FunctionReference callback;
  Napi::AsyncContext* context;
  AddonData* data;
  bool reap = true;  // false: told of the exit only (a process this one does not wait for)
};

namespace {

void OnClosed(uv_handle_t* handle) {
  auto* w = static_cast<ExitWatch*>(handle->data);
  delete w->context;
  delete w;
}

void Finish(ExitWatch* w) {
  uv_poll_stop(&w->poll);
  w->data->watches.erase(w);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnClosed);
}

// The callback's argument: { exitCode }, { signal, coreDumped } or { error }. nullptr when the
// environment runs no more JavaScript (setting a property may run some, so it is refused then).
napi_value ExitResult(napi_env env, int status, int r, int err, const siginfo_t& si) {
  napi_value o, v;
  if (napi_create_object(env, &o) != napi_ok) return nullptr;
  auto set = [&](const char* key, napi_status made) { return made == napi_ok && napi_set_named_property(env, o, key, v) == napi_ok; };
  bool ok;
  if (status < 0) {
    ok = set("error", napi_create_string_utf8(env, uv_strerror(status), NAPI_AUTO_LENGTH, &v));
  } else if (r < 0) {
    ok = set("error", napi_create_string_utf8(env, ErrnoName(err).c_str(), NAPI_AUTO_LENGTH, &v));
  } else if (si.si_code == 0) {
    ok = set("exited", napi_get_boolean(env, true, &v));
  } else if (si.si_code == CLD_EXITED) {
    ok = set("exitCode", napi_create_int32(env, si.si_status, &v));
  } else {
    ok = set("signal", napi_create_int32(env, si.si_status, &v)) && set("coreDumped", napi_get_boolean(env, si.si_code == CLD_DUMPED, &v));
  }
  return ok ? o : nullptr;
}

void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
  auto* w = static_cast<ExitWatch*>(handle->data);
  siginfo_t si{};
  int r = -1;
  if (status >= 0 && !w->reap) {
    // Readable: the process has exited. Its reaping (and its status) is its parent's.
    r = 0;
    si.si_pid = -1;
    si.si_code = 0;
  } else if (status >= 0) {
    do {
      r = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(w->pidfd), &si, WEXITED | WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0 && si.si_pid == 0) return;  // not yet: spurious wake-up
  }
  int err = r < 0 ? errno : 0;
  Napi::Env env(w->env);
  Napi::HandleScope scope(env);
  napi_value result = ExitResult(env, status, r, err, si);
  Napi::FunctionReference cb = std::move(w->callback);
  Napi::AsyncContext* ctx = w->context;
  w->context = nullptr;
  Finish(w);
  napi_value ret;
  napi_status st = result == nullptr ? napi_pending_exception : napi_make_callback(env, *ctx, env.Global(), cb.Value(), 1, &result, &ret);
  delete ctx;
  if (st == napi_ok) return;
  // Either the callback threw: an uncaught exception, as Node reports its own callbacks' ones. Or
  // the environment runs no more JavaScript: an unref'd watch whose child ended just as this
  // process did is readable in the teardown's last turns of the loop, before CloseAllWatches.
  // node-addon-api's calls would throw there, which aborts the process; the exit goes unreported.
  ReportCallbackFailure(env);
}

// watchExit(pidfd, callback, options?): calls back once with { exitCode } or { signal, coreDumped }, reaping the child.
// options.unref: the watch does not keep the event loop alive (a child that outlives us need not be waited for).
// options.reap false: calls back with { exited: true } at the exit, reaping nothing (any process's pidfd).
Napi::Value WatchExit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 2 && info[0].IsNumber() && info[1].IsFunction() && (info.Length() < 3 || info[2].IsUndefined() || info[2].IsObject()),
                  "watchExit(pidfd, callback, options?: { unref?: boolean, reap?: boolean })");
  bool unref = info.Length() >= 3 && info[2].IsObject() && info[2].As<Napi::Object>().Get("unref").ToBoolean().Value();
  bool reap = !(info.Length() >= 3 && info[2].IsObject() && info[2].As<Napi::Object>().Get("reap").StrictEquals(Napi::Boolean::New(env, false)));
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    Napi::Error::New(env, "no event loop").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* w = new ExitWatch();
  w->pidfd = info[0].As<Napi::Number>().Int32Value();
  w->reap = reap;
  w->env = env;
  w->callback = Napi::Persistent(info[1].As<Napi::Function>());
  w->context = new Napi::AsyncContext(env, "nsbox.exit");
  w->data = GetData(env);
  int r = uv_poll_init(loop, &w->poll, w->pidfd);
  if (r == 0) {
    w->poll.data = w;
    r = uv_poll_start(&w->poll, UV_READABLE, OnReadable);
    if (r != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnClosed);
    } else {
      if (unref) uv_unref(reinterpret_cast<uv_handle_t*>(&w->poll));
      w->data->watches.insert(w);
      return env.Undefined();
    }
  } else {
    delete w->context;
    delete w;
  }
  MakeSysError(env, -r, "uv_poll_start", "pidfd").ThrowAsJavaScriptException();
  return env.Undefined();
}

// sendSignal(pidfd, signo): pidfd_send_signal, so a recycled pid can never be hit.
Napi::Value SendSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 2 && info[0].IsNumber() && info[1].IsNumber(), "sendSignal(pidfd, signo)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  int sig = info[1].As<Napi::Number>().Int32Value();
  if (sys_pidfd_send_signal(fd, sig) < 0) {
    if (errno == ESRCH) return Napi::Boolean::New(env, false);
    MakeSysError(env, errno, "pidfd_send_signal", "").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

// unwatchExit(pidfd): stops a watchExit that has not called back (no callback then); false when
// none is active. The pidfd stays open: it is the caller's to close.
Napi::Value UnwatchExit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 1 && info[0].IsNumber(), "unwatchExit(pidfd)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  AddonData* data = GetData(env);
  for (ExitWatch* w : data->watches) {
    if (w->pidfd != fd) continue;
    w->callback.Reset();
    Finish(w);
    return Napi::Boolean::New(env, true);
  }
  return Napi::Boolean::New(env, false);
}

Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 1 && info[0].IsNumber(), "pidfdOpen(pid)");
  int pid = info[0].As<Napi::Number>().Int32Value();
  int fd = sys_pidfd_open(pid, 0);
  if (fd < 0) {
    // Older kernels (6.1 here) answer EINVAL, not ESRCH, for a process already reaped while a
    // pidfd of it is still open elsewhere (its struct pid outlives its task): our shim, reaped by
    // its spawner's watch. Gone either way, as callers read ESRCH.
    int err = errno == EINVAL && pid > 0 ? ESRCH : errno;
    MakeSysError(env, err, "pidfd_open", "").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

}  // namespace

void CloseAllWatches(AddonData* data) {
  for (ExitWatch* w : std::set<ExitWatch*>(data->watches)) {
    w->callback.Reset();
    // Destroyed now, while the environment still is: the handle's close callback comes later, in
    // the teardown (an unref'd watch of a child that outlives this process is still open at exit).
    delete w->context;
    w->context = nullptr;
    Finish(w);
  }
}

void InitPidfd(Napi::Env env, Napi::Object exports) {
  exports.Set("watchExit", Napi::Function::New(env, WatchExit, "watchExit"));
  exports.Set("unwatchExit", Napi::Function::New(env, UnwatchExit, "unwatchExit"));
  exports.Set("sendSignal", Napi::Function::New(env, SendSignal, "sendSignal"));
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
}

}  // namespace nsbox
