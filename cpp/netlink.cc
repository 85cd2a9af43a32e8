// rtnetlink: a list of requests, each one kernel operation (create a bridge or a veth pair, set a
// link's master, namespace, name, address, mtu or state, add an address or a route, delete a link),
// sent in order in one thread-pool hop. lib/network builds the list; nothing here decides anything.
// A request runs in the network namespace named by its `ns` (a path such as /run/nsbox/netns/ID;
// empty: the process's own): its socket is opened there by the worker thread (setns of that thread
// only, then back).
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "addon-data.h"
#include "errors.h"
#include "netns.h"
#include "unique-fd.h"

namespace nsbox {
namespace {

enum class NetOpKind { kLinkAdd, kLinkSet, kLinkDel, kAddrAdd, kRouteAdd };

struct NetOp {
  NetOpKind kind;
  std::string ns;          // namespace the request runs in ('' = own)
  std::string name;        // the link
  std::string link_kind;   // link_add: 'bridge' | 'veth'
  std::string peer;        // veth: the peer's name
  std::string peer_ns;     // veth: the namespace the peer is created in
  std::string master;      // link_set: bridge to attach to ('' = leave)
  std::string new_name;    // link_set: rename
  std::string move_to;     // link_set: namespace to move the link into
  std::string mac;         // 6 bytes, or empty
  std::string address;     // addr_add: the address; route_add: the gateway
  int prefix = 0;
  int mtu = 0;
  int up = -1;             // link_set: 1 up, 0 down, -1 leave
  bool optional = false;   // link_del: a missing link is fine
};

// A request buffer: the header, a fixed part, then attributes (nested ones through Begin/End).
class Msg {
 public:
  Msg(uint16_t type, uint16_t flags, const void* fixed, size_t fixed_len) {
    buf_.resize(NLMSG_SPACE(fixed_len));
    auto* h = Hdr();
    h->nlmsg_type = type;
    h->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
    memcpy(NLMSG_DATA(h), fixed, fixed_len);
    h->nlmsg_len = static_cast<uint32_t>(NLMSG_LENGTH(fixed_len));
  }
  void Attr(uint16_t type, const void* data, size_t len) {
    size_t at = NLMSG_ALIGN(Hdr()->nlmsg_len);
    buf_.resize(at + RTA_SPACE(len));
    auto* rta = reinterpret_cast<rtattr*>(buf_.data() + at);
    rta->rta_type = type;
    rta->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
    if (len) memcpy(RTA_DATA(rta), data, len);
    Hdr()->nlmsg_len = static_cast<uint32_t>(at + RTA_ALIGN(rta->rta_len));
  }
  void Str(uint16_t type, const std::string& s) { Attr(type, s.c_str(), s.size() + 1); }
  void U32(uint16_t type, uint32_t v) { Attr(type, &v, sizeof v); }
  size_t Begin(uint16_t type) {
    size_t at = NLMSG_ALIGN(Hdr()->nlmsg_len);
    Attr(type, nullptr, 0);
    return at;
  }
  void End(size_t at) { reinterpret_cast<rtattr*>(buf_.data() + at)->rta_len = static_cast<uint16_t>(Hdr()->nlmsg_len - at); }
  // Raw bytes (a nested ifinfomsg inside VETH_INFO_PEER).
  void Raw(const void* data, size_t len) {
    size_t at = NLMSG_ALIGN(Hdr()->nlmsg_len);
    buf_.resize(at + NLMSG_ALIGN(len));
    memcpy(buf_.data() + at, data, len);
    Hdr()->nlmsg_len = static_cast<uint32_t>(at + NLMSG_ALIGN(len));
  }
  nlmsghdr* Hdr() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }

 private:
  std::vector<char> buf_;
};

class Socket {
 public:
  bool Open(const std::string& ns, NetFailure* f) {
    bool ok = InNetns(ns, f, [&] {
      fd_.reset(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
      if (!fd_.valid()) return Failed(f, errno, "socket AF_NETLINK");
      return true;
    });
    return ok;
  }
  // Sends the request and reads its ack: 0 or the kernel's errno.
  int Send(Msg* m) {
    nlmsghdr* h = m->Hdr();
    h->nlmsg_seq = ++seq_;
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    if (sendto(fd_.get(), h, h->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) return errno;
    char buf[8192];
    while (true) {
      ssize_t n = recv(fd_.get(), buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno;
      for (auto* r = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(r, static_cast<unsigned>(n)); r = NLMSG_NEXT(r, n)) {
        if (r->nlmsg_seq != seq_) continue;
        if (r->nlmsg_type == NLMSG_ERROR) return -static_cast<nlmsgerr*>(NLMSG_DATA(r))->error;
        if (reply_ != nullptr && r->nlmsg_type == RTM_NEWLINK) *reply_ = static_cast<ifinfomsg*>(NLMSG_DATA(r))->ifi_index;
      }
    }
  }
  // ifindex of a link by name, or 0 with *err set.
  int Index(const std::string& name, int* err) {
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    Msg m(RTM_GETLINK, 0, &ifi, sizeof ifi);
    m.Str(IFLA_IFNAME, name);
    int index = 0;
    reply_ = &index;
    *err = Send(&m);
    reply_ = nullptr;
    return *err == 0 ? index : 0;
  }

 private:
  UniqueFd fd_;
  uint32_t seq_ = 0;
  int* reply_ = nullptr;
};

bool ParseMac(const std::string& s, unsigned char out[6]) {
  if (s.size() != 17) return false;
  for (int i = 0; i < 6; i++) out[i] = static_cast<unsigned char>(strtoul(s.substr(i * 3, 2).c_str(), nullptr, 16));
  return true;
}

// One request; 0 or errno, with *what naming it for the error message.
int RunOne(const NetOp& op, std::map<std::string, Socket>* socks, std::string* what, NetFailure* f) {
  auto it = socks->find(op.ns);
  if (it == socks->end()) {
    Socket s;
    if (!s.Open(op.ns, f)) return -1;
    it = socks->emplace(op.ns, std::move(s)).first;
  }
  Socket& sock = it->second;
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  unsigned char mac[6];
  switch (op.kind) {
    case NetOpKind::kLinkAdd: {
      *what = "RTM_NEWLINK " + op.link_kind + " " + op.name + (op.peer.empty() ? "" : " (peer " + op.peer + ")");
      Msg m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
      m.Str(IFLA_IFNAME, op.name);
      if (op.mtu) m.U32(IFLA_MTU, static_cast<uint32_t>(op.mtu));
      if (ParseMac(op.mac, mac)) m.Attr(IFLA_ADDRESS, mac, 6);
      size_t info = m.Begin(IFLA_LINKINFO);
      m.Str(IFLA_INFO_KIND, op.link_kind);
      UniqueFd peer_ns;
      if (op.link_kind == "veth") {
        size_t data = m.Begin(IFLA_INFO_DATA);
        size_t peer = m.Begin(VETH_INFO_PEER);
        ifinfomsg pifi{};
        pifi.ifi_family = AF_UNSPEC;
        m.Raw(&pifi, sizeof pifi);
        m.Str(IFLA_IFNAME, op.peer);
        if (op.mtu) m.U32(IFLA_MTU, static_cast<uint32_t>(op.mtu));
        if (!op.peer_ns.empty()) {
          peer_ns.reset(open(op.peer_ns.c_str(), O_RDONLY | O_CLOEXEC));
          if (!peer_ns.valid()) return errno;
          m.U32(IFLA_NET_NS_FD, static_cast<uint32_t>(peer_ns.get()));
        }
        m.End(peer);
        m.End(data);
      }
      m.End(info);
      return sock.Send(&m);
    }
    case NetOpKind::kLinkSet: {
      *what = "RTM_NEWLINK set " + op.name;
      int err = 0;
      ifi.ifi_index = sock.Index(op.name, &err);
      if (err) return err;
      Msg m(RTM_NEWLINK, 0, &ifi, sizeof ifi);
      UniqueFd ns;
      if (!op.new_name.empty()) m.Str(IFLA_IFNAME, op.new_name);
      if (op.mtu) m.U32(IFLA_MTU, static_cast<uint32_t>(op.mtu));
      if (ParseMac(op.mac, mac)) m.Attr(IFLA_ADDRESS, mac, 6);
      if (!op.master.empty()) {
        int master = sock.Index(op.master, &err);
        if (err) {
          *what += " master " + op.master;
          return err;
        }
        m.U32(IFLA_MASTER, static_cast<uint32_t>(master));
      }
      if (!op.move_to.empty()) {
        ns.reset(open(op.move_to.c_str(), O_RDONLY | O_CLOEXEC));
        if (!ns.valid()) return errno;
        m.U32(IFLA_NET_NS_FD, static_cast<uint32_t>(ns.get()));
      }
      if (op.up >= 0) {
        auto* hi = static_cast<ifinfomsg*>(NLMSG_DATA(m.Hdr()));
        hi->ifi_change = IFF_UP;
        hi->ifi_flags = op.up ? IFF_UP : 0;
      }
      return sock.Send(&m);
    }
    case NetOpKind::kLinkDel: {
      *what = "RTM_DELLINK " + op.name;
      Msg m(RTM_DELLINK, 0, &ifi, sizeof ifi);
      m.Str(IFLA_IFNAME, op.name);
      int err = sock.Send(&m);
      return op.optional && err == ENODEV ? 0 : err;
    }
    case NetOpKind::kAddrAdd: {
      *what = "RTM_NEWADDR " + op.address + "/" + std::to_string(op.prefix) + " on " + op.name;
      int err = 0;
      ifaddrmsg ifa{};
      bool v6 = op.address.find(':') != std::string::npos;
      ifa.ifa_family = v6 ? AF_INET6 : AF_INET;
      ifa.ifa_prefixlen = static_cast<unsigned char>(op.prefix);
      ifa.ifa_index = static_cast<unsigned>(sock.Index(op.name, &err));
      if (err) return err;
      unsigned char addr[16];
      if (inet_pton(ifa.ifa_family, op.address.c_str(), addr) != 1) return EINVAL;
      Msg m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
      m.Attr(IFA_LOCAL, addr, v6 ? 16 : 4);
      m.Attr(IFA_ADDRESS, addr, v6 ? 16 : 4);
      if (v6) m.U32(IFA_FLAGS, IFA_F_NODAD);
      return sock.Send(&m);
    }
    case NetOpKind::kRouteAdd: {
      *what = "RTM_NEWROUTE default via " + op.address;
      bool v6 = op.address.find(':') != std::string::npos;
      rtmsg rt{};
      rt.rtm_family = v6 ? AF_INET6 : AF_INET;
      rt.rtm_table = RT_TABLE_MAIN;
      rt.rtm_protocol = RTPROT_BOOT;
      rt.rtm_scope = RT_SCOPE_UNIVERSE;
      rt.rtm_type = RTN_UNICAST;
      unsigned char gw[16];
      if (inet_pton(rt.rtm_family, op.address.c_str(), gw) != 1) return EINVAL;
      Msg m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rt, sizeof rt);
      m.Attr(RTA_GATEWAY, gw, v6 ? 16 : 4);
      return sock.Send(&m);
    }
  }
  return EINVAL;
}

class NetlinkWorker : public Napi::AsyncWorker {
 public:
  NetlinkWorker(Napi::Env env, std::vector<NetOp> ops)
      : Napi::AsyncWorker(env, "nsbox.netlink"), ops_(std::move(ops)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    std::map<std::string, Socket> socks;
    for (const NetOp& op : ops_) {
      std::string what;
      int err = RunOne(op, &socks, &what, &fail_);
      if (err == -1) return;  // fail_ filled by the namespace switch
      if (err != 0) {
        fail_.err = err;
        fail_.what = what;
        return;
      }
    }
  }
  void OnOK() override {
    if (fail_.err != 0) {
      deferred_.Reject(MakeSysError(Env(), fail_.err, "netlink", "", fail_.what).Value());
      return;
    }
    deferred_.Resolve(Env().Undefined());
  }

 private:
  std::vector<NetOp> ops_;
  NetFailure fail_;
  Napi::Promise::Deferred deferred_;
};

std::string Str(const Napi::Object& o, const char* k) {
  Napi::Value v = o.Get(k);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}
int Int(const Napi::Object& o, const char* k, int def) {
  Napi::Value v = o.Get(k);
  return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : def;
}

Napi::Value Netlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 1 && info[0].IsArray(), "netlink(ops: NetlinkOp[])");
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<NetOp> ops;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    NSBOX_CHECK_ARG(env, v.IsObject(), "netlink: every op must be an object");
    Napi::Object o = v.As<Napi::Object>();
    std::string kind = Str(o, "op");
    NetOp op;
    if (kind == "link_add") op.kind = NetOpKind::kLinkAdd;
    else if (kind == "link_set") op.kind = NetOpKind::kLinkSet;
    else if (kind == "link_del") op.kind = NetOpKind::kLinkDel;
    else if (kind == "addr_add") op.kind = NetOpKind::kAddrAdd;
    else if (kind == "route_add") op.kind = NetOpKind::kRouteAdd;
    else NSBOX_CHECK_ARG(env, false, "netlink: unknown op");
    op.ns = Str(o, "ns");
    op.name = Str(o, "name");
    op.link_kind = Str(o, "kind");
    op.peer = Str(o, "peer");
    op.peer_ns = Str(o, "peerNs");
    op.master = Str(o, "master");
    op.new_name = Str(o, "rename");
    op.move_to = Str(o, "moveTo");
    op.mac = Str(o, "mac");
    op.address = Str(o, "address");
    op.prefix = Int(o, "prefix", 0);
    op.mtu = Int(o, "mtu", 0);
    Napi::Value up = o.Get("up");
    op.up = up.IsBoolean() ? (up.As<Napi::Boolean>().Value() ? 1 : 0) : -1;
    Napi::Value opt = o.Get("optional");
    op.optional = opt.IsBoolean() && opt.As<Napi::Boolean>().Value();
    ops.push_back(std::move(op));
  }
  auto* w = new NetlinkWorker(env, std::move(ops));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// The links of this process's network namespace, by name (if_nameindex).
Napi::Value LinkNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct if_nameindex* list = if_nameindex();
  if (list == nullptr) {
    MakeSysError(env, errno, "if_nameindex", "").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (auto* p = list; p->if_index != 0; p++) out.Set(n++, Napi::String::New(env, p->if_name));
  if_freenameindex(list);
  return out;
}

}  // namespace

void InitNetlink(Napi::Env env, Napi::Object exports) {
  exports.Set("netlink", Napi::Function::New(env, Netlink, "netlink"));
  exports.Set("linkNames", Napi::Function::New(env, LinkNames, "linkNames"));
}

}  // namespace nsbox
