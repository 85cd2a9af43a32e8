// The shim's port proxy (docker-proxy's job, for what DNAT cannot serve): a held TCP socket of a
// published port ([::] or [::1]) listens, and each connection it accepts is relayed to the
// container's address and port; a held UDP socket's datagrams are relayed through one upstream
// socket per client (dropped after kUdpIdleMs without traffic). IPv6 has no route_localnet, so a connection to ::1 DNAT'ed to a
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

  static constexpr long long kUdpIdleMs = 90000;  // docker-proxy's UDP timeout
  static constexpr size_t kUdpFlows = 1024;       // per shim: the longest idle goes first

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
  struct Flow {             // one UDP client of a held socket
    int held;
    sockaddr_storage client;
    socklen_t client_len;
    UniqueFd up;            // connected to the container
    std::string key;
    long long last_ms;
  };

  void Accept(int lfd, const Listener& l);
  // The address to relay to now: the target file's line, or the start address without a file.
  std::string Target(const Listener& l) const;
  void Handle(Conn* c, int i, unsigned events);
  bool Pump(Conn* c, int from);
  bool Flush(Conn* c, int to);
  void Rearm(Conn* c);
  void Close(Conn* c);
  void UdpIn(int held, const Listener& l);
  void UdpOut(Flow* f);
  void DropFlow(Flow* f);
  void Sweep();

  int epoll_ = -1;
  std::string target_file_;
  std::map<int, Listener> listeners_;
  std::map<int, std::shared_ptr<Conn>> conns_;  // by either side's fd
  std::map<int, Listener> udp_;                 // held UDP sockets
  std::map<std::string, std::shared_ptr<Flow>> flows_;  // by held fd + client address
  std::map<int, Flow*> flow_by_up_;
  UniqueFd sweep_;                              // a timerfd while UDP sockets are relayed
};

}  // namespace nsbox
