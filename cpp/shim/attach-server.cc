// attach.sock and events.sock (protocol in attach.h): their clients, output and events to them,
// frames from them, and the container's stdin they write to.
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../spawn-core.h"
#include "attach.h"
#include "bundle-files.h"
#include "supervisor.h"

namespace nsbox {
namespace {

void Header(unsigned char* h, int type, size_t len) {
  h[0] = static_cast<unsigned char>(type);
  h[1] = static_cast<unsigned char>(len >> 24);
  h[2] = static_cast<unsigned char>(len >> 16);
  h[3] = static_cast<unsigned char>(len >> 8);
  h[4] = static_cast<unsigned char>(len);
}

}  // namespace

bool Supervisor::Listen(const char* name, UniqueFd* fd, std::string* err) {
  auto fail = [&](const std::string& what, const char* syscall) {
    *err = bundle::ErrorJson("nsbox-shim: " + what + ": " + ErrnoName(errno) + " (" + strerror(errno) + ")", errno, syscall, name);
    return false;
  };
  fd->reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd->valid()) return fail("socket", "socket");
  // Bound by a relative name from inside the bundle: sun_path holds 108 bytes, a bundle path may not.
  unlinkat(dir_.get(), name, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, name, sizeof addr.sun_path - 1);
  // Back to the working directory it had after the bind: / (so that the shim holds no bundle as
  // its cwd), or a spare's bundle (which names it as that bundle's shim: main.cc).
  UniqueFd cwd(open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fchdir(dir_.get()) < 0) return fail("fchdir", "fchdir");
  int r = bind(fd->get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int bind_err = errno;
  if (!cwd.valid() || fchdir(cwd.get()) < 0) {
    if (chdir("/") < 0) {
    }
  }
  errno = bind_err;
  if (r < 0) return fail(std::string("bind ") + name, "bind");
  fchmodat(dir_.get(), name, 0600, 0);
  if (listen(fd->get(), 16) < 0) return fail("listen", "listen");
  return true;
}

void Supervisor::Broadcast(int type, const char* data, size_t len) {
  if (!attached_ && early_.size() + attach::kHeader + len <= attach::kMaxPending) {
    unsigned char h[attach::kHeader];
    Header(h, type, len);
    early_.append(reinterpret_cast<const char*>(h), sizeof h);
    early_.append(data, len);
  }
  for (size_t i = clients_.size(); i-- > 0;) {
    if (clients_[i].events) continue;
    SendFrame(&clients_[i], type, data, len);
    if (clients_[i].pending.size() > attach::kMaxPending) DropClient(i);
  }
}

void Supervisor::Event(const std::string& json) {
  if (json.empty()) return;
  for (size_t i = clients_.size(); i-- > 0;) {
    if (!clients_[i].events) continue;
    SendFrame(&clients_[i], attach::kEvent, json.data(), json.size());
    if (clients_[i].pending.size() > attach::kMaxPending) DropClient(i);
  }
}

void Supervisor::SendFrame(Client* c, int type, const char* data, size_t len) {
  unsigned char h[attach::kHeader];
  Header(h, type, len);
  size_t sent = 0;
  if (c->pending.empty()) {
    iovec iov[2] = {{h, sizeof h}, {const_cast<char*>(data), len}};
    ssize_t n = writev(c->fd.get(), iov, 2);
    if (n < 0 && errno != EAGAIN) {
      c->pending.assign(attach::kMaxPending + 1, '\0');  // broken: dropped by the caller
      return;
    }
    sent = n < 0 ? 0 : static_cast<size_t>(n);
    if (sent == sizeof h + len) return;
    Watch(c->fd.get(), EPOLLIN | EPOLLOUT);
  }
  std::string frame(reinterpret_cast<char*>(h), sizeof h);
  frame.append(data, len);
  c->pending.append(frame, sent, std::string::npos);
}

void Supervisor::Accept(int listen_fd, bool events) {
  for (;;) {
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    clients_.push_back(Client{UniqueFd(fd), events, {}, {}, false});
    Watch(fd, EPOLLIN);
    if (events) {
      // The state as it is now: what happened before this client came is not replayed.
      std::string now = "{\"type\":\"state\"," + state_.substr(1);
      SendFrame(&clients_.back(), attach::kEvent, now.data(), now.size());
      if (clients_.back().pending.size() > attach::kMaxPending) DropClient(clients_.size() - 1);
      continue;
    }
    if (!attached_ && !early_.empty()) {
      clients_.back().pending.swap(early_);
      Watch(fd, EPOLLIN | EPOLLOUT);
    }
    attached_ = true;
    early_.clear();
  }
}

// Ends each client's stream once its output is all sent, then waits (2 s at most) for it to hang
// up, reading and dropping what it still sends. Closing with input unread, or before the client has
// stopped writing, would reset the connection, and the client could lose the output it had not
// read yet (the end of a short run).
void Supervisor::CloseClients() {
  long long deadline = MonotonicMs() + 2000;
  epoll_event events[16];
  for (;;) {
    for (Client& c : clients_) {
      if (!c.shut && c.pending.empty()) {
        shutdown(c.fd.get(), SHUT_WR);
        c.shut = true;
        Watch(c.fd.get(), EPOLLIN);
      }
    }
    long long left = deadline - MonotonicMs();
    if (clients_.empty() || left <= 0) break;
    int n = epoll_wait(epoll_.get(), events, 16, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int k = 0; k < n; k++) {
      int fd = events[k].data.fd;
      size_t i = 0;
      while (i < clients_.size() && clients_[i].fd.get() != fd) i++;
      if (i == clients_.size()) {
        OnEvent(fd, events[k].events);
        continue;
      }
      Client& c = clients_[i];
      if ((events[k].events & EPOLLOUT) && !c.pending.empty()) {
        ssize_t w = write(c.fd.get(), c.pending.data(), c.pending.size());
        if (w < 0 && errno != EAGAIN) {
          DropClient(i);
          continue;
        }
        if (w > 0) c.pending.erase(0, static_cast<size_t>(w));
      }
      if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        char buf[4096];
        ssize_t r;
        while ((r = read(c.fd.get(), buf, sizeof buf)) > 0) {
        }
        if (r == 0 || (r < 0 && errno != EAGAIN)) DropClient(i);
      }
    }
  }
  clients_.clear();
}

void Supervisor::Linger() {
  long long deadline = MonotonicMs() + cfg_.await_attach_ms;
  epoll_event events[16];
  for (;;) {
    bool flushed = true;
    for (const Client& c : clients_) flushed = flushed && c.pending.empty();
    if ((attached_ && flushed) || stopping_) return;
    long long left = deadline - MonotonicMs();
    if (left <= 0) return;
    int n = epoll_wait(epoll_.get(), events, 16, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return;
    for (int i = 0; i < n; i++) OnEvent(events[i].data.fd, events[i].events);
  }
}

void Supervisor::DropClient(size_t i) {
  Unwatch(clients_[i].fd.get());
  clients_.erase(clients_.begin() + static_cast<long>(i));
}

void Supervisor::OnClient(size_t i, unsigned events) {
  Client* c = &clients_[i];
  if (events & EPOLLOUT) {
    ssize_t n = write(c->fd.get(), c->pending.data(), c->pending.size());
    if (n < 0 && errno != EAGAIN) return DropClient(i);
    if (n > 0) c->pending.erase(0, static_cast<size_t>(n));
    if (c->pending.empty()) Watch(c->fd.get(), EPOLLIN);
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    char buf[65536];
    ssize_t n = read(c->fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) return DropClient(i);
    if (c->events) return;  // an events client has nothing to say
    c->in.append(buf, static_cast<size_t>(n));
    while (c->in.size() >= attach::kHeader) {
      const auto* h = reinterpret_cast<const unsigned char*>(c->in.data());
      uint32_t len = (static_cast<uint32_t>(h[1]) << 24) | (h[2] << 16) | (h[3] << 8) | h[4];
      if (len > attach::kMaxPayload) return DropClient(i);
      if (c->in.size() < attach::kHeader + len) break;
      int type = h[0];
      std::string payload = c->in.substr(attach::kHeader, len);
      c->in.erase(0, attach::kHeader + len);
      HandleFrame(type, payload);
      c = &clients_[i];  // HandleFrame does not touch clients_, but stay safe if it ever does
    }
  }
}

void Supervisor::HandleFrame(int type, const std::string& payload) {
  if (type == attach::kStdin) WriteStdin(payload.data(), payload.size());
  else if (type == attach::kCloseStdin) CloseStdin();
  else if (type == attach::kResize && payload.size() == 4 && pty_master_.valid()) {
    const auto* p = reinterpret_cast<const unsigned char*>(payload.data());
    winsize ws{};
    ws.ws_col = static_cast<unsigned short>((p[0] << 8) | p[1]);
    ws.ws_row = static_cast<unsigned short>((p[2] << 8) | p[3]);
    ioctl(pty_master_.get(), TIOCSWINSZ, &ws);  // the container gets SIGWINCH
  }
  // Unknown types are ignored, for forward compatibility.
}

void Supervisor::WriteStdin(const char* data, size_t len) {
  if (!stdin_w_.valid() || stdin_eof_) return;
  if (stdin_pending_.empty()) {
    ssize_t n = write(stdin_w_.get(), data, len);
    if (n < 0 && errno != EAGAIN) {
      Unwatch(stdin_w_.get());
      stdin_w_.reset();  // the container closed its stdin
      return;
    }
    size_t sent = n < 0 ? 0 : static_cast<size_t>(n);
    if (sent == len) return;
    data += sent;
    len -= sent;
    Watch(stdin_w_.get(), EPOLLOUT);
  }
  if (stdin_pending_.size() + len <= attach::kMaxPending) stdin_pending_.append(data, len);
}

void Supervisor::FlushStdin() {
  ssize_t n = write(stdin_w_.get(), stdin_pending_.data(), stdin_pending_.size());
  if (n < 0 && errno == EAGAIN) return;
  if (n < 0) stdin_pending_.clear();
  else stdin_pending_.erase(0, static_cast<size_t>(n));
  if (!stdin_pending_.empty() && n >= 0) return;
  Unwatch(stdin_w_.get());
  if (n < 0 || stdin_eof_) stdin_w_.reset();
}

void Supervisor::CloseStdin() {
  if (!stdin_w_.valid()) return;
  if (pty_master_.valid()) return WriteStdin("\x04", 1);  // a terminal's EOF is its VEOF character
  stdin_eof_ = true;
  if (stdin_pending_.empty()) stdin_w_.reset();
}

}  // namespace nsbox
