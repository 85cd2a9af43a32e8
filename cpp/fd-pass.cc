// Passing an fd to another process over a unix socket (SCM_RIGHTS): the OCI runtime's
// --console-socket, where the caller (containerd's shim) receives the container's pty master.
// The sending itself is SendFdTo (spawn-core.cc), which a spawn also uses for a seccomp listener.
#include "addon-data.h"
#include "args.h"
#include "errors.h"
#include "spawn-core.h"

namespace nsbox {
namespace {

// sendFd(socketPath, fd, name): connects to the stream socket at socketPath and sends fd with one
// message, `name` (runc sends the pty's path), then closes the connection.
Napi::Value SendFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0);
  int fd = static_cast<int>(ArgNumber(info, 1));
  std::string name = ArgString(info, 2);
  SpawnFailure f;
  if (!SendFdTo(path, fd, name.empty() ? "/dev/console" : name, &f)) MakeSysError(env, f.err, f.syscall, f.path).ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace

void InitFdPass(Napi::Env env, Napi::Object exports) {
  exports.Set("sendFd", Napi::Function::New(env, SendFd, "sendFd"));
}

}  // namespace nsbox
