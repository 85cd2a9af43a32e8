// One file descriptor riding on a message over a unix socket (SCM_RIGHTS): the msghdr that
// sendmsg(2) and recvmsg(2) take, with a control buffer for exactly one int. Header-only and
// allocation-free, so the spawned child (setup-ops.cc, raw syscalls only) can use it too.
#pragma once

#include <string.h>
#include <sys/socket.h>

namespace nsbox {

struct FdMessage {
  iovec iov;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};

  FdMessage(void* data, size_t len) : iov{data, len} {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
  }
  FdMessage(const FdMessage&) = delete;
  FdMessage& operator=(const FdMessage&) = delete;

  // Sends `fd` with the data (before sendmsg).
  void Attach(int fd) {
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  // Sends the data alone (a later chunk of a stream whose first chunk carried the fd).
  void WithoutFd() {
    msg.msg_control = nullptr;
    msg.msg_controllen = 0;
  }
  // After a recvmsg that got `n` bytes: the fd the message carried, or -1.
  int Received(ssize_t n) {
    cmsghdr* c = n > 0 ? CMSG_FIRSTHDR(&msg) : nullptr;
    if (c == nullptr || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
  }
};

}  // namespace nsbox
