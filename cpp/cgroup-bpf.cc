// Device rules on cgroup v2 (cgroup-bpf.h): emit, load, attach. The program reads the request once
// (r2 device type, r3 access bits, r4 major, r5 minor), then tests one block per rule; a block
// whose conditions all hold returns that rule's verdict, and the default comes last.
#include "cgroup-bpf.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "unique-fd.h"

namespace nsbox {
namespace {

struct bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  struct bpf_insn i;
  memset(&i, 0, sizeof i);
  i.code = code;
  i.dst_reg = dst;
  i.src_reg = src;
  i.off = off;
  i.imm = imm;
  return i;
}
struct bpf_insn LoadCtx(uint8_t dst, int16_t off) { return Insn(BPF_LDX | BPF_MEM | BPF_W, dst, BPF_REG_1, off, 0); }
struct bpf_insn AluImm(uint8_t op, uint8_t dst, int32_t imm) { return Insn(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm); }
struct bpf_insn MovReg(uint8_t dst, uint8_t src) { return Insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
struct bpf_insn JumpImm(uint8_t op, uint8_t dst, int32_t imm, int16_t off) { return Insn(BPF_JMP | op | BPF_K, dst, 0, off, imm); }
struct bpf_insn JumpReg(uint8_t op, uint8_t dst, uint8_t src, int16_t off) { return Insn(BPF_JMP | op | BPF_X, dst, src, off, 0); }
struct bpf_insn Exit() { return Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

int32_t Word(const uint8_t* p) {
  uint32_t v = static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
               static_cast<uint32_t>(p[3]) << 24;
  return static_cast<int32_t>(v);
}

long Bpf(int cmd, union bpf_attr* attr) { return syscall(SYS_bpf, cmd, attr, sizeof *attr); }

constexpr int32_t kAllAccess = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;

}  // namespace

bool EmitDeviceProgram(const uint8_t* data, size_t len, std::vector<struct bpf_insn>* out, std::string* bad) {
  if (len < 4 || len % 4 != 0 || (len / 4 - 1) % 5 != 0) return *bad = "length is not 1 + 5n words", false;
  const size_t n = (len / 4 - 1) / 5;
  if (n > kMaxDeviceRules) return *bad = "too many rules", false;
  const int32_t deflt = Word(data);
  if (deflt != 0 && deflt != 1) return *bad = "default is not 0 or 1", false;
  out->clear();
  // struct bpf_cgroup_dev_ctx: access_type (BPF_DEVCG_ACC_* << 16 | BPF_DEVCG_DEV_*), major, minor.
  out->push_back(LoadCtx(BPF_REG_2, 0));
  out->push_back(AluImm(BPF_AND, BPF_REG_2, 0xffff));
  out->push_back(LoadCtx(BPF_REG_3, 0));
  out->push_back(AluImm(BPF_RSH, BPF_REG_3, 16));
  out->push_back(LoadCtx(BPF_REG_4, 4));
  out->push_back(LoadCtx(BPF_REG_5, 8));
  for (size_t i = 0; i < n; i++) {
    const uint8_t* r = data + 4 + i * 20;
    const int32_t type = Word(r), major = Word(r + 4), minor = Word(r + 8), access = Word(r + 12), allow = Word(r + 16);
    if (type < 0 || type > 2 || major < -1 || minor < -1 || access < 1 || access > kAllAccess || (allow != 0 && allow != 1)) {
      return *bad = "rule " + std::to_string(i) + " is malformed", false;
    }
    // The tests, each jumping past the block (its length known once emitted) when it fails.
    std::vector<struct bpf_insn> block;
    if (type != 0) block.push_back(JumpImm(BPF_JNE, BPF_REG_2, type, 0));
    if (allow && access != kAllAccess) {
      block.push_back(MovReg(BPF_REG_1, BPF_REG_3));
      block.push_back(AluImm(BPF_AND, BPF_REG_1, access));
      block.push_back(JumpReg(BPF_JNE, BPF_REG_1, BPF_REG_3, 0));  // asks for more than it allows
    } else if (!allow && access != kAllAccess) {
      block.push_back(MovReg(BPF_REG_1, BPF_REG_3));
      block.push_back(AluImm(BPF_AND, BPF_REG_1, access));
      block.push_back(JumpImm(BPF_JEQ, BPF_REG_1, 0, 0));  // asks for none of what it denies
    }
    if (major >= 0) block.push_back(JumpImm(BPF_JNE, BPF_REG_4, major, 0));
    if (minor >= 0) block.push_back(JumpImm(BPF_JNE, BPF_REG_5, minor, 0));
    const bool always = block.empty();
    block.push_back(AluImm(BPF_MOV, BPF_REG_0, allow));
    block.push_back(Exit());
    for (size_t k = 0; k < block.size(); k++) {
      if (BPF_CLASS(block[k].code) == BPF_JMP && BPF_OP(block[k].code) != BPF_EXIT) block[k].off = static_cast<int16_t>(block.size() - k - 1);
    }
    out->insert(out->end(), block.begin(), block.end());
    // A rule that matches every request decides all: what follows could never run, and the
    // verifier refuses unreachable instructions.
    if (always) return true;
  }
  out->push_back(AluImm(BPF_MOV, BPF_REG_0, deflt));
  out->push_back(Exit());
  return true;
}

int SetDeviceProgram(const std::string& dir, const uint8_t* data, size_t len, const char** step) {
  std::vector<struct bpf_insn> insns;
  std::string bad;
  *step = "rules";
  if (!EmitDeviceProgram(data, len, &insns, &bad)) return EINVAL;

  union bpf_attr load;
  memset(&load, 0, sizeof load);
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<uint64_t>(insns.data());
  load.insn_cnt = static_cast<uint32_t>(insns.size());
  // The kernel asks for a GPL-compatible license only of programs that call GPL-only helpers;
  // this one calls none.
  static const char kLicense[] = "Apache";
  load.license = reinterpret_cast<uint64_t>(kLicense);
  *step = "bpf(BPF_PROG_LOAD)";
  UniqueFd prog(static_cast<int>(Bpf(BPF_PROG_LOAD, &load)));
  if (!prog.valid()) return errno;

  *step = "open";
  UniqueFd cg(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg.valid()) return errno;

  // The programs attached here before (ours, from create or an earlier update).
  uint32_t ids[64];
  union bpf_attr query;
  memset(&query, 0, sizeof query);
  query.query.target_fd = cg.get();
  query.query.attach_type = BPF_CGROUP_DEVICE;
  query.query.prog_ids = reinterpret_cast<uint64_t>(ids);
  query.query.prog_cnt = 64;
  *step = "bpf(BPF_PROG_QUERY)";
  if (Bpf(BPF_PROG_QUERY, &query) < 0) return errno;
  std::vector<UniqueFd> old;
  for (uint32_t i = 0; i < query.query.prog_cnt && i < 64; i++) {
    union bpf_attr get;
    memset(&get, 0, sizeof get);
    get.prog_id = ids[i];
    UniqueFd fd(static_cast<int>(Bpf(BPF_PROG_GET_FD_BY_ID, &get)));
    if (fd.valid()) old.push_back(std::move(fd));
    else if (errno != ENOENT) return *step = "bpf(BPF_PROG_GET_FD_BY_ID)", errno;  // ENOENT: detached meanwhile
  }

  union bpf_attr attach;
  memset(&attach, 0, sizeof attach);
  attach.target_fd = cg.get();
  attach.attach_bpf_fd = prog.get();
  attach.attach_type = BPF_CGROUP_DEVICE;
  *step = "bpf(BPF_PROG_ATTACH)";
  if (old.size() == 1) {
    // One program before: swapped in one step, so no request ever sees neither or both.
    attach.attach_flags = BPF_F_ALLOW_MULTI | BPF_F_REPLACE;
    attach.replace_bpf_fd = old[0].get();
    if (Bpf(BPF_PROG_ATTACH, &attach) == 0) return 0;
    if (errno != EINVAL) return errno;  // EINVAL: a kernel before 5.6, without BPF_F_REPLACE
    attach.replace_bpf_fd = 0;
  }
  // The new program first, then the old ones off: in between both apply (the stricter wins).
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (Bpf(BPF_PROG_ATTACH, &attach) < 0) return errno;
  for (const auto& fd : old) {
    union bpf_attr detach;
    memset(&detach, 0, sizeof detach);
    detach.target_fd = cg.get();
    detach.attach_bpf_fd = fd.get();
    detach.attach_type = BPF_CGROUP_DEVICE;
    if (Bpf(BPF_PROG_DETACH, &detach) < 0 && errno != ENOENT) return *step = "bpf(BPF_PROG_DETACH)", errno;
  }
  return 0;
}

#if defined(NAPI_VERSION)
}  // namespace nsbox

// The addon's side: setDeviceProgram(dir, rules: Buffer) (lib/native.ts).
#include <napi.h>

#include "addon-data.h"
#include "errors.h"

namespace nsbox {
namespace {

Napi::Value SetDeviceProgramJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NSBOX_CHECK_ARG(env, info.Length() >= 2 && info[0].IsString() && info[1].IsBuffer(), "setDeviceProgram(dir, rules)");
  const std::string dir = info[0].As<Napi::String>().Utf8Value();
  auto rules = info[1].As<Napi::Buffer<uint8_t>>();
  const char* step = "";
  int err = SetDeviceProgram(dir, rules.Data(), rules.Length(), &step);
  if (err == EINVAL && strcmp(step, "rules") == 0) {
    Napi::TypeError::New(env, "setDeviceProgram: malformed rule list").ThrowAsJavaScriptException();
  } else if (err != 0) {
    MakeSysError(env, err, step, dir).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

}  // namespace

void InitCgroupBpf(Napi::Env env, Napi::Object exports) {
  exports.Set("setDeviceProgram", Napi::Function::New(env, SetDeviceProgramJs, "setDeviceProgram"));
}
#endif

}  // namespace nsbox
