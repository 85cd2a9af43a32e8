// Passing an fd to another process over a unix socket (SCM_RIGHTS): the OCI runtime's
// --console-socket, where the caller (containerd's shim) receives the container's pty master.
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "addon-data.h"
#include "args.h"
#include "errors.h"
#include "unique-fd.h"

namespace nsbox {
namespace {

// sendFd(socketPath, fd, name): connects to the stream socket at socketPath and sends fd with one
// message, `name` (runc sends the pty's path), then closes the connection.
Napi::Value SendFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0);
  int fd = static_cast<int>(ArgNumber(info, 1));
  std::string name = ArgString(info, 2);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    MakeSysError(env, ENAMETOOLONG, "connect", path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  memcpy(addr.sun_path, path.c_str(), path.size());
  UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock.valid() || connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    MakeSysError(env, errno, "connect", path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (name.empty()) name = "/dev/console";
  iovec iov{const_cast<char*>(name.data()), name.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n;
  while ((n = sendmsg(sock.get(), &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  if (n < 0) {
    MakeSysError(env, errno, "sendmsg", path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return env.Undefined();
}

}  // namespace

void InitFdPass(Napi::Env env, Napi::Object exports) {
  exports.Set("sendFd", Napi::Function::New(env, SendFd, "sendFd"));
}

}  // namespace nsbox
