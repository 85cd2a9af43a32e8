// Network namespaces kept by a bind mount (as `ip netns add`), host ports held by a bound socket,
// and nftables commands run through libnftables (loaded with dlopen on first use, so the addon
// loads on hosts without it; one context per environment, its cache reused between commands).
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <string>

#include "addon-data.h"
#include "args.h"
#include "errors.h"
#include "netns.h"
#include "unique-fd.h"

namespace nsbox {

// libnftables, as far as nsbox uses it (nftables/libnftables.h, stable since 0.9).
struct NftLib {
  void* (*ctx_new)(uint32_t) = nullptr;
  void (*ctx_free)(void*) = nullptr;
  int (*run)(void*, const char*) = nullptr;
  int (*buffer_output)(void*) = nullptr;
  int (*buffer_error)(void*) = nullptr;
  const char* (*get_output)(void*) = nullptr;
  const char* (*get_error)(void*) = nullptr;
  void (*set_output_flags)(void*, unsigned) = nullptr;
  void* handle = nullptr;
  void* ctx = nullptr;
  std::mutex lock;
};

void FreeNft(AddonData* data) {
  if (data->nft == nullptr) return;
  if (data->nft->ctx != nullptr) data->nft->ctx_free(data->nft->ctx);
  delete data->nft;
  data->nft = nullptr;
}

namespace {

constexpr unsigned kNftOutputJson = 1u << 4;  // NFT_CTX_OUTPUT_JSON

bool LoadNft(NftLib* n, std::string* error) {
  if (n->ctx != nullptr) return true;
  if (n->handle == nullptr) n->handle = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
  if (n->handle == nullptr) {
    *error = std::string("libnftables is not installed (Debian: apt-get install libnftables1): ") + dlerror();
    return false;
  }
  auto sym = [&](auto* fn, const char* name) {
    *reinterpret_cast<void**>(fn) = dlsym(n->handle, name);
    return *fn != nullptr;
  };
  if (!sym(&n->ctx_new, "nft_ctx_new") || !sym(&n->ctx_free, "nft_ctx_free") || !sym(&n->run, "nft_run_cmd_from_buffer") ||
      !sym(&n->buffer_output, "nft_ctx_buffer_output") || !sym(&n->buffer_error, "nft_ctx_buffer_error") ||
      !sym(&n->get_output, "nft_ctx_get_output_buffer") || !sym(&n->get_error, "nft_ctx_get_error_buffer") ||
      !sym(&n->set_output_flags, "nft_ctx_output_set_flags")) {
    *error = "libnftables.so.1 lacks a function nsbox uses";
    return false;
  }
  n->ctx = n->ctx_new(0);
  if (n->ctx == nullptr) {
    *error = "nft_ctx_new failed";
    return false;
  }
  n->buffer_output(n->ctx);
  n->buffer_error(n->ctx);
  return true;
}

class NftWorker : public Napi::AsyncWorker {
 public:
  NftWorker(Napi::Env env, NftLib* lib, std::string cmds, bool json)
      : Napi::AsyncWorker(env, "nsbox.nft"), lib_(lib), cmds_(std::move(cmds)), json_(json), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    std::lock_guard<std::mutex> g(lib_->lock);
    if (!LoadNft(lib_, &error_)) return;
    lib_->set_output_flags(lib_->ctx, json_ ? kNftOutputJson : 0);
    int r = lib_->run(lib_->ctx, cmds_.c_str());
    const char* out = lib_->get_output(lib_->ctx);
    const char* err = lib_->get_error(lib_->ctx);
    output_ = out ? out : "";
    if (r != 0) error_ = err && *err ? err : "nft: the commands failed";
  }
  void OnOK() override {
    if (!error_.empty()) {
      Napi::Object details = Napi::Object::New(Env());
      details.Set("code", "ERR_NFT");
      details.Set("syscall", "nft");
      Napi::Value e = GetData(Env())->error_class.New({Napi::String::New(Env(), "nft: " + error_), details});
      deferred_.Reject(e);
      return;
    }
    deferred_.Resolve(Napi::String::New(Env(), output_));
  }

 private:
  NftLib* lib_;
  std::string cmds_, output_, error_;
  bool json_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value Nft(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 1 && info[0].IsString(), "nft(commands, json?)");
  AddonData* data = GetData(env);
  if (data->nft == nullptr) data->nft = new NftLib();
  bool json = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  auto* w = new NftWorker(env, data->nft, info[0].As<Napi::String>().Utf8Value(), json);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

bool LoopbackUp(NetFailure* f) {
  UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) return Failed(f, errno, "socket");
  ifreq ifr{};
  memcpy(ifr.ifr_name, "lo", 3);
  if (ioctl(s.get(), SIOCGIFFLAGS, &ifr) < 0) return Failed(f, errno, "ioctl SIOCGIFFLAGS lo");
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (ioctl(s.get(), SIOCSIFFLAGS, &ifr) < 0) return Failed(f, errno, "ioctl SIOCSIFFLAGS lo");
  return true;
}

// A new network namespace on this thread, bound on `path`, lo up; the thread goes back after.
bool CreateNetns(const std::string& path, NetFailure* f) {
  UniqueFd file(open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (!file.valid()) return Failed(f, errno, "create " + path);
  file.reset();
  UniqueFd self(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!self.valid()) {
    unlink(path.c_str());
    return Failed(f, errno, "open /proc/thread-self/ns/net");
  }
  if (unshare(CLONE_NEWNET) < 0) {
    unlink(path.c_str());
    return Failed(f, errno, "unshare CLONE_NEWNET");
  }
  bool ok = LoopbackUp(f);
  if (ok && mount("/proc/thread-self/ns/net", path.c_str(), nullptr, MS_BIND, nullptr) < 0) ok = Failed(f, errno, "bind the namespace on " + path);
  if (setns(self.get(), CLONE_NEWNET) < 0) abort();
  if (!ok) unlink(path.c_str());
  return ok;
}

class NetnsWorker : public Napi::AsyncWorker {
 public:
  NetnsWorker(Napi::Env env, std::string path)
      : Napi::AsyncWorker(env, "nsbox.netnsCreate"), path_(std::move(path)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { CreateNetns(path_, &fail_); }
  void OnOK() override {
    if (fail_.err) deferred_.Reject(MakeSysError(Env(), fail_.err, "netns", path_, fail_.what).Value());
    else deferred_.Resolve(Env().Undefined());
  }

 private:
  std::string path_;
  NetFailure fail_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value NetnsCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 1 && info[0].IsString(), "netnsCreate(path)");
  auto* w = new NetnsWorker(env, info[0].As<Napi::String>().Utf8Value());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// Unmounts and removes a namespace's file; false when there was none.
Napi::Value NetnsDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0);
  if (umount2(path.c_str(), MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) {
    MakeSysError(env, errno, "umount2", path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (unlink(path.c_str()) < 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    MakeSysError(env, errno, "unlink", path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

// bindPort(protocol, ip, port, reuse?) -> [fd, port]: a socket bound to ip:port ('' = every IPv4
// address, port 0 = one from ip_local_port_range), never listening: it only holds the port. CLOEXEC.
// `reuse`: SO_REUSEADDR, for a socket its holder will listen on (a proxy), so that connections it
// had in TIME_WAIT do not keep the port from being held again.
Napi::Value BindPort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string proto = ArgString(info, 0), ip = ArgString(info, 1);
  int port = static_cast<int>(ArgNumber(info, 2));
  bool reuse = info.Length() > 3 && info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
  bool v6 = ip.find(':') != std::string::npos;
  int type = proto == "udp" ? SOCK_DGRAM : SOCK_STREAM;
  int protocol = proto == "sctp" ? IPPROTO_SCTP : 0;
  std::string where = proto + " " + (ip.empty() ? "0.0.0.0" : v6 ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
  UniqueFd fd(socket(v6 ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC, protocol));
  if (!fd.valid()) {
    MakeSysError(env, errno, "socket", "", "socket for " + where).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int one = 1;
  if (reuse && setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) {
    MakeSysError(env, errno, "setsockopt", "", "SO_REUSEADDR for " + where).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr) != 1) {
      MakeSysError(env, EINVAL, "bind", "", "bind " + where).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int on = 1;
    setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    if (!ip.empty() && inet_pton(AF_INET, ip.c_str(), &a->sin_addr) != 1) {
      MakeSysError(env, EINVAL, "bind", "", "bind " + where).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    len = sizeof *a;
  }
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) < 0) {
    MakeSysError(env, errno, "bind", "", "bind " + where).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) < 0) {
    MakeSysError(env, errno, "getsockname", "").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int got = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, fd.release()));
  out.Set(1u, Napi::Number::New(env, got));
  return out;
}

}  // namespace

void InitNetns(Napi::Env env, Napi::Object exports) {
  exports.Set("netnsCreate", Napi::Function::New(env, NetnsCreate, "netnsCreate"));
  exports.Set("netnsDelete", Napi::Function::New(env, NetnsDelete, "netnsDelete"));
  exports.Set("bindPort", Napi::Function::New(env, BindPort, "bindPort"));
  exports.Set("nft", Napi::Function::New(env, Nft, "nft"));
}

}  // namespace nsbox
