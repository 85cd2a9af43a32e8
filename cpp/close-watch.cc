// Close watching on the event loop: inotify's IN_CLOSE on one file, read by a uv_poll. A process
// waiting for a store lock (flock) learns that its holder let go when the holder closes the lock
// file (every unlock of ours closes it, and a holder that dies has its files closed by the kernel),
// instead of trying again on a timer. Node's fs.watch asks inotify for changes only, never closes.
#include <errno.h>
#include <sys/inotify.h>
#include <unistd.h>
#include <uv.h>

#include "addon-data.h"
#include "errors.h"

namespace nsbox {

struct CloseWatch {
  uv_poll_t poll;
  int fd;
  napi_env env;
  Napi::FunctionReference callback;
  Napi::AsyncContext* context;
  AddonData* data;
};

namespace {

void OnClosed(uv_handle_t* handle) {
  auto* w = static_cast<CloseWatch*>(handle->data);
  close(w->fd);
  delete w->context;
  delete w;
}

void Finish(CloseWatch* w) {
  uv_poll_stop(&w->poll);
  w->data->closeWatches.erase(w);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnClosed);
}

void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
  auto* w = static_cast<CloseWatch*>(handle->data);
  // The events themselves do not matter, only that one came: drained, so the next one wakes us.
  alignas(struct inotify_event) char buf[4096];
  bool any = status < 0;
  for (;;) {
    ssize_t n = read(w->fd, buf, sizeof buf);
    if (n > 0) {
      any = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  if (!any) return;
  Napi::Env env(w->env);
  Napi::HandleScope scope(env);
  napi_value ret;
  // The callback may stop this watch (Finish): the context and callback are used before that.
  napi_status st = napi_make_callback(env, *w->context, env.Global(), w->callback.Value(), 0, nullptr, &ret);
  if (st == napi_ok) return;
  ReportCallbackFailure(env);
}

// watchClose(path, callback): calls back (no arguments) after each close of the file `path` by any
// process, until unwatchClose. Returns the watch's handle (its inotify fd).
Napi::Value WatchClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 2 && info[0].IsString() && info[1].IsFunction(), "watchClose(path, callback)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    Napi::Error::New(env, "no event loop").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    MakeSysError(env, errno, "inotify_init1", path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (inotify_add_watch(fd, path.c_str(), IN_CLOSE_WRITE | IN_CLOSE_NOWRITE) < 0) {
    int err = errno;
    close(fd);
    MakeSysError(env, err, "inotify_add_watch", path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* w = new CloseWatch();
  w->fd = fd;
  w->env = env;
  w->callback = Napi::Persistent(info[1].As<Napi::Function>());
  w->context = new Napi::AsyncContext(env, "nsbox.close");
  w->data = GetData(env);
  int r = uv_poll_init(loop, &w->poll, fd);
  if (r == 0) {
    w->poll.data = w;
    r = uv_poll_start(&w->poll, UV_READABLE, OnReadable);
    if (r == 0) {
      w->data->closeWatches.insert(w);
      return Napi::Number::New(env, fd);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnClosed);
  } else {
    close(fd);
    delete w->context;
    delete w;
  }
  MakeSysError(env, -r, "uv_poll_start", path).ThrowAsJavaScriptException();
  return env.Undefined();
}

// unwatchClose(handle): stops the watch (no more callbacks) and closes its inotify fd; false when
// no such watch is active.
Napi::Value UnwatchClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 1 && info[0].IsNumber(), "unwatchClose(handle)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  for (CloseWatch* w : GetData(env)->closeWatches) {
    if (w->fd != fd) continue;
    Finish(w);
    return Napi::Boolean::New(env, true);
  }
  return Napi::Boolean::New(env, false);
}

}  // namespace

void CloseAllCloseWatches(AddonData* data) {
  for (CloseWatch* w : std::set<CloseWatch*>(data->closeWatches)) {
    w->callback.Reset();
    delete w->context;
    w->context = nullptr;
    Finish(w);
  }
}

void InitCloseWatch(Napi::Env env, Napi::Object exports) {
  exports.Set("watchClose", Napi::Function::New(env, WatchClose, "watchClose"));
  exports.Set("unwatchClose", Napi::Function::New(env, UnwatchClose, "unwatchClose"));
}

}  // namespace nsbox
