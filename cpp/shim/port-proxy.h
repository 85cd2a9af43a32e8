// The shim's port proxy (docker-proxy's job, for what DNAT cannot serve): a held TCP socket of a
// published port ([::] or [::1]) listens, and each connection it accepts is relayed to the
// container's address and port. IPv6 has no route_localnet, so a connection to ::1 DNAT'ed to a
// container would have its replies dropped; ip6 DNAT leaves ::1 alone and this answers it. Its fds
// are watched on the supervisor's epoll; one buffer per direction, no thread. The container's
// address is read at each connection from the target file (lib/network/proxy-target.ts), which a
// network connect/disconnect rewrites: the relay follows the container to its next network.
#pragma once
#include <sys/socket.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../unique-fd.h"

namespace nsbox {

struct ProxySpec {
  int fd;               // a held, bound socket (the shim's fd)
  std::string address;  // the container's address (IPv6 or IPv4)
  int port;
};

class PortProxy {
 public:
  // listen() on each socket and watch it; false (errno set, *what naming it) on failure.
  // `target_file` (may be empty: each spec's address, always) holds the address to relay to.
  bool Setup(int epoll, const std::vector<ProxySpec>& specs, const std::string& target_file, std::string* what);
  // Handles an event on one of its fds; false when the fd is not its own.
  bool OnEvent(int fd, unsigned events);

 private:
  struct Listener {
    std::string address;  // the address at start: used while the target file cannot be read
    int port;
  };
  struct Side {
    UniqueFd fd;
    std::string out;       // read from the other side, not yet written to this one
    bool in_eof = false;   // this side sent FIN
    bool out_shut = false; // we shut down writing to it
  };
  struct Conn {
    Side s[2];             // 0: the client, 1: the container
    bool connecting = true;
  };

  void Accept(int lfd, const Listener& l);
  // The address to relay to now: the target file's line, or the start address without a file.
  std::string Target(const Listener& l) const;
  void Handle(Conn* c, int i, unsigned events);
  bool Pump(Conn* c, int from);
  bool Flush(Conn* c, int to);
  void Rearm(Conn* c);
  void Close(Conn* c);

  int epoll_ = -1;
  std::string target_file_;
  std::map<int, Listener> listeners_;
  std::map<int, std::shared_ptr<Conn>> conns_;  // by either side's fd
};

}  // namespace nsbox
