// Pseudo-terminals: a pair whose slave becomes the container's controlling terminal.
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "addon-data.h"
#include "errors.h"
#include "unique-fd.h"

namespace nsbox {
namespace {

// openPty({ cols, rows }) -> { master, slave, path }; both fds close-on-exec.
Napi::Value OpenPty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UniqueFd master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master.valid()) {
    MakeSysError(env, errno, "posix_openpt", "/dev/ptmx").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (grantpt(master.get()) < 0 || unlockpt(master.get()) < 0) {
    MakeSysError(env, errno, "unlockpt", "/dev/ptmx").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  char name[128];
  if (ptsname_r(master.get(), name, sizeof name) != 0) {
    MakeSysError(env, errno, "ptsname", "").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  UniqueFd slave(open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave.valid()) {
    MakeSysError(env, errno, "open", name).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (info.Length() >= 1 && info[0].IsObject()) {
    Napi::Object o = info[0].As<Napi::Object>();
    struct winsize ws {};
    ws.ws_col = static_cast<unsigned short>(o.Get("cols").ToNumber().Uint32Value());
    ws.ws_row = static_cast<unsigned short>(o.Get("rows").ToNumber().Uint32Value());
    if (ws.ws_col > 0 && ws.ws_row > 0) ioctl(master.get(), TIOCSWINSZ, &ws);
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("path", name);
  r.Set("slave", Napi::Number::New(env, slave.release()));
  r.Set("master", Napi::Number::New(env, master.release()));
  return r;
}

// resizePty(fd, cols, rows): TIOCSWINSZ; the kernel sends SIGWINCH to the foreground group.
Napi::Value ResizePty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 3 && info[0].IsNumber() && info[1].IsNumber() && info[2].IsNumber(),
                  "resizePty(fd, cols, rows)");
  struct winsize ws {};
  ws.ws_col = static_cast<unsigned short>(info[1].As<Napi::Number>().Uint32Value());
  ws.ws_row = static_cast<unsigned short>(info[2].As<Napi::Number>().Uint32Value());
  if (ioctl(info[0].As<Napi::Number>().Int32Value(), TIOCSWINSZ, &ws) < 0) {
    MakeSysError(env, errno, "ioctl", "TIOCSWINSZ").ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

}  // namespace

void InitPty(Napi::Env env, Napi::Object exports) {
  exports.Set("openPty", Napi::Function::New(env, OpenPty, "openPty"));
  exports.Set("resizePty", Napi::Function::New(env, ResizePty, "resizePty"));
}

}  // namespace nsbox
