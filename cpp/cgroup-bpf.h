// Device rules on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program emitted from a compact rule list
// (compiled by lib/cgroup/devices.ts), loaded with bpf(BPF_PROG_LOAD) and attached to a cgroup
// directory with BPF_F_ALLOW_MULTI, in place of the programs attached to it before. No N-API here:
// nsbox-runc's cached create (cpp/runc/create.cc) uses the same code as the addon.
//
// The compact form, little-endian int32 words:
//   [default (0 deny, 1 allow)] then per rule [type, major, minor, access, allow]
// in match order (the first rule that matches decides; TypeScript has already turned "the last
// written wins" around). type: 0 any, 1 block, 2 char (BPF_DEVCG_DEV_*); major/minor: -1 any;
// access: BPF_DEVCG_ACC_* bits (1 mknod, 2 read, 4 write). An allow rule matches a request whose
// access it covers fully, a deny rule one that asks for any access it names.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include <string>
#include <vector>

#include <linux/bpf.h>

namespace nsbox {

// At most this many rules (each is at most 9 instructions; far below the kernel's limit).
constexpr size_t kMaxDeviceRules = 1000;

// The program for a compact rule list; false (with *bad saying why) when the list is malformed.
bool EmitDeviceProgram(const uint8_t* data, size_t len, std::vector<struct bpf_insn>* out, std::string* bad);

// Loads the program for `data` and attaches it to the cgroup directory `dir`, detaching the device
// programs attached there before (atomically with BPF_F_REPLACE when there was exactly one).
// Returns 0, or an errno with *step naming the operation that failed ("bpf(BPF_PROG_LOAD)", ...).
// EINVAL with step "rules" for a malformed list.
int SetDeviceProgram(const std::string& dir, const uint8_t* data, size_t len, const char** step);

}  // namespace nsbox
