#include "port-proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

namespace nsbox {
namespace {

constexpr size_t kChunk = 65536;
constexpr int kBurst = 64;  // datagrams per event, so one busy client cannot hold the loop

long long NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

bool ParseAddress(const std::string& address, int port, sockaddr_storage* ss, socklen_t* len) {
  memset(ss, 0, sizeof *ss);
  if (address.find(':') != std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in6*>(ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof *a;
    return inet_pton(AF_INET6, address.c_str(), &a->sin6_addr) == 1;
  }
  auto* a = reinterpret_cast<sockaddr_in*>(ss);
  a->sin_family = AF_INET;
  a->sin_port = htons(static_cast<uint16_t>(port));
  *len = sizeof *a;
  return inet_pton(AF_INET, address.c_str(), &a->sin_addr) == 1;
}

}  // namespace

bool PortProxy::Setup(int epoll, const std::vector<ProxySpec>& specs, const std::string& target_file, std::string* what) {
  epoll_ = epoll;
  target_file_ = target_file;
  for (const ProxySpec& p : specs) {
    Listener l{p.address, p.port};
    sockaddr_storage ss;
    socklen_t len;
    *what = "proxy to " + p.address + " port " + std::to_string(p.port);
    if (!ParseAddress(p.address, p.port, &ss, &len)) {
      errno = EINVAL;
      return false;
    }
    int type = 0;
    socklen_t tlen = sizeof type;
    *what = "getsockopt SO_TYPE (fd " + std::to_string(p.fd) + ")";
    if (getsockopt(p.fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0) return false;
    if (type == SOCK_DGRAM) {
      *what = "relay UDP (fd " + std::to_string(p.fd) + ")";
      int flags = fcntl(p.fd, F_GETFL);
      if (flags < 0 || fcntl(p.fd, F_SETFL, flags | O_NONBLOCK) < 0) return false;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = p.fd;
      if (epoll_ctl(epoll_, EPOLL_CTL_ADD, p.fd, &ev) < 0) return false;
      udp_[p.fd] = l;
      continue;
    }
    *what = "listen (fd " + std::to_string(p.fd) + ")";
    int flags = fcntl(p.fd, F_GETFL);
    if (flags < 0 || fcntl(p.fd, F_SETFL, flags | O_NONBLOCK) < 0 || listen(p.fd, 128) < 0) return false;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = p.fd;
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, p.fd, &ev) < 0) return false;
    listeners_[p.fd] = l;
  }
  if (!udp_.empty()) {
    // idle UDP clients are swept every kUdpIdleMs / 3
    *what = "timerfd for the UDP relay";
    sweep_.reset(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!sweep_.valid()) return false;
    itimerspec its{};
    its.it_interval.tv_sec = kUdpIdleMs / 3000;
    its.it_value = its.it_interval;
    if (timerfd_settime(sweep_.get(), 0, &its, nullptr) < 0) return false;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = sweep_.get();
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, sweep_.get(), &ev) < 0) return false;
  }
  return true;
}

bool PortProxy::OnEvent(int fd, unsigned events) {
  auto l = listeners_.find(fd);
  if (l != listeners_.end()) {
    Accept(fd, l->second);
    return true;
  }
  auto u = udp_.find(fd);
  if (u != udp_.end()) {
    UdpIn(fd, u->second);
    return true;
  }
  auto f = flow_by_up_.find(fd);
  if (f != flow_by_up_.end()) {
    UdpOut(f->second);
    return true;
  }
  if (sweep_.valid() && fd == sweep_.get()) {
    uint64_t n;
    if (read(fd, &n, sizeof n) < 0) {
      // EAGAIN: a spurious wake-up; the sweep is harmless either way
    }
    Sweep();
    return true;
  }
  auto it = conns_.find(fd);
  if (it == conns_.end()) return false;
  std::shared_ptr<Conn> c = it->second;  // kept alive through Close
  Handle(c.get(), c->s[0].fd.get() == fd ? 0 : 1, events);
  return true;
}

std::string PortProxy::Target(const Listener& l) const {
  if (target_file_.empty()) return l.address;
  UniqueFd f(open(target_file_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!f.valid()) return errno == ENOENT ? l.address : std::string();
  char buf[128];
  ssize_t n = read(f.get(), buf, sizeof buf - 1);
  if (n <= 0) return std::string();
  std::string s(buf, static_cast<size_t>(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

void PortProxy::Accept(int lfd, const Listener& l) {
  // One per event (level-triggered: the next comes on the next round).
  UniqueFd client(accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!client.valid()) return;
  // Where the container is now; none (no network left, an unreadable file): the client is refused.
  sockaddr_storage to;
  socklen_t len;
  if (!ParseAddress(Target(l), l.port, &to, &len)) return;
  UniqueFd up(socket(to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!up.valid()) return;
  if (connect(up.get(), reinterpret_cast<const sockaddr*>(&to), len) < 0 && errno != EINPROGRESS) return;
  auto c = std::make_shared<Conn>();
  c->s[0].fd = std::move(client);
  c->s[1].fd = std::move(up);
  for (Side& s : c->s) {
    epoll_event ev{};
    ev.data.fd = s.fd.get();
    epoll_ctl(epoll_, EPOLL_CTL_ADD, s.fd.get(), &ev);
    conns_[s.fd.get()] = c;
  }
  Rearm(c.get());
}

// Reads what `from` has and writes it on to the other side; false when the connection is done for.
bool PortProxy::Pump(Conn* c, int from) {
  Side& in = c->s[from];
  Side& out = c->s[1 - from];
  char buf[kChunk];
  ssize_t n = read(in.fd.get(), buf, sizeof buf);
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  if (n == 0) {
    in.in_eof = true;
    return Flush(c, 1 - from);
  }
  out.out.append(buf, static_cast<size_t>(n));
  return Flush(c, 1 - from);
}

// Writes what is pending for side `to`; after the other side's EOF, passes the FIN on.
bool PortProxy::Flush(Conn* c, int to) {
  Side& s = c->s[to];
  while (!s.out.empty()) {
    ssize_t n = write(s.fd.get(), s.out.data(), s.out.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN;
    s.out.erase(0, static_cast<size_t>(n));
  }
  if (c->s[1 - to].in_eof && !s.out_shut) {
    shutdown(s.fd.get(), SHUT_WR);
    s.out_shut = true;
  }
  return true;
}

void PortProxy::Handle(Conn* c, int i, unsigned events) {
  if (c->connecting && i == 1) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->s[1].fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) return Close(c);
    c->connecting = false;
  }
  bool ok = true;
  if (events & EPOLLOUT) ok = Flush(c, i);
  if (ok && !c->connecting && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->s[i].in_eof && c->s[1 - i].out.empty()) ok = Pump(c, i);
  // A side that hung up (or failed) with nothing to read takes the connection with it.
  if (ok && (events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN)) ok = false;
  if (!ok || (c->s[0].out_shut && c->s[1].out_shut)) return Close(c);
  Rearm(c);
}

void PortProxy::Rearm(Conn* c) {
  for (int i = 0; i < 2; i++) {
    Side& s = c->s[i];
    epoll_event ev{};
    ev.data.fd = s.fd.get();
    bool connecting = c->connecting;
    if (!connecting && !s.in_eof && c->s[1 - i].out.empty()) ev.events |= EPOLLIN;
    if ((connecting && i == 1) || !s.out.empty()) ev.events |= EPOLLOUT;
    epoll_ctl(epoll_, EPOLL_CTL_MOD, s.fd.get(), &ev);
  }
}

void PortProxy::Close(Conn* c) {
  for (Side& s : c->s) {
    epoll_ctl(epoll_, EPOLL_CTL_DEL, s.fd.get(), nullptr);
    conns_.erase(s.fd.get());
  }
  // the last reference may have gone with the map entries: c is not used after this
}

void PortProxy::UdpIn(int held, const Listener& l) {
  char buf[kChunk];
  for (int i = 0; i < kBurst; i++) {
    sockaddr_storage from;
    socklen_t from_len = sizeof from;
    ssize_t n = recvfrom(held, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) return;  // EAGAIN: all read
    std::string key = std::to_string(held) + "/" + std::string(reinterpret_cast<const char*>(&from), from_len);
    auto it = flows_.find(key);
    Flow* f;
    if (it != flows_.end()) {
      f = it->second.get();
    } else {
      // A new client: to where the container is now; nowhere (no network left): dropped.
      sockaddr_storage to;
      socklen_t len;
      if (!ParseAddress(Target(l), l.port, &to, &len)) continue;
      UniqueFd up(socket(to.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!up.valid() || connect(up.get(), reinterpret_cast<const sockaddr*>(&to), len) < 0) continue;
      if (flows_.size() >= kUdpFlows) {
        Flow* oldest = nullptr;
        for (auto& e : flows_) {
          if (oldest == nullptr || e.second->last_ms < oldest->last_ms) oldest = e.second.get();
        }
        DropFlow(oldest);
      }
      auto nf = std::make_shared<Flow>();
      nf->held = held;
      nf->client = from;
      nf->client_len = from_len;
      nf->up = std::move(up);
      nf->key = key;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = nf->up.get();
      if (epoll_ctl(epoll_, EPOLL_CTL_ADD, nf->up.get(), &ev) < 0) continue;
      f = nf.get();
      flow_by_up_[f->up.get()] = f;
      flows_[key] = std::move(nf);
    }
    f->last_ms = NowMs();
    // A full socket buffer or an ICMP error from an earlier datagram: this one is lost, as UDP may.
    if (send(f->up.get(), buf, static_cast<size_t>(n), MSG_DONTWAIT) < 0 && errno == ECONNREFUSED) DropFlow(f);
  }
}

void PortProxy::UdpOut(Flow* f) {
  char buf[kChunk];
  for (int i = 0; i < kBurst; i++) {
    ssize_t n = recv(f->up.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      // ECONNREFUSED: nothing listens on the container's port (ICMP unreachable); the next datagram tries again
      if (errno != EAGAIN && errno != EINTR) DropFlow(f);
      return;
    }
    f->last_ms = NowMs();
    sendto(f->held, buf, static_cast<size_t>(n), MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&f->client), f->client_len);
  }
}

void PortProxy::DropFlow(Flow* f) {
  epoll_ctl(epoll_, EPOLL_CTL_DEL, f->up.get(), nullptr);
  flow_by_up_.erase(f->up.get());
  flows_.erase(f->key);  // f is freed here
}

void PortProxy::Sweep() {
  long long now = NowMs();
  std::vector<Flow*> idle;
  for (auto& e : flows_) {
    if (now - e.second->last_ms >= kUdpIdleMs) idle.push_back(e.second.get());
  }
  for (Flow* f : idle) DropFlow(f);
}

}  // namespace nsbox
