// Plan parsing, shared by the addon (from a JS object) and nsbox-shim (from plan.bin): one reader
// so both build exactly the same Plan. `Src` adapts a source object; it provides, for an object O:
//   Str(O, key) -> std::string ("" when absent), Num(O, key, def) -> double, Bool(O, key, def),
//   StrList(O, key) -> std::vector<std::string>, Bytes(O, key, std::string*) -> bool (a Buffer),
//   Length(O, key) -> int (-1 when not an array), At(O, key, i) -> element, IsObject(element),
//   NumAt(O, key, i) -> double.
// lib/runtime builds and validates the plan; here it is only copied into C++ memory.
#pragma once
#include <sys/sysmacros.h>

#include <string>

#include "plan.h"

namespace nsbox {

bool ParseOpKind(const std::string& s, OpKind* k);

template <typename Src, typename Obj>
bool ParsePlan(const Src& src, const Obj& o, Plan* plan, std::string* bad) {
  plan->clone_flags = static_cast<uint64_t>(src.Num(o, "cloneFlags", 0));
  plan->argv_s = src.StrList(o, "argv");
  plan->envp_s = src.StrList(o, "env");
  plan->path_env = src.Str(o, "path");
  if (plan->argv_s.empty()) {
    *bad = "plan.argv must not be empty";
    return false;
  }
  int nstdio = src.Length(o, "stdio");
  for (int i = 0; i < 3 && i < nstdio; i++) plan->stdio[i] = static_cast<int>(src.NumAt(o, "stdio", i, -1));
  plan->setsid = src.Bool(o, "setsid", true);
  plan->ctty = src.Bool(o, "ctty", false);
  plan->pdeathsig = src.Bool(o, "pdeathsig", true);
  plan->preserve_fds = static_cast<int>(src.Num(o, "preserveFds", 0));
  plan->uid_map = src.Str(o, "uidMap");
  plan->gid_map = src.Str(o, "gidMap");
  plan->deny_setgroups = src.Bool(o, "denySetgroups", false);
  plan->uid_mapper = src.Str(o, "uidMapper");
  plan->gid_mapper = src.Str(o, "gidMapper");
  plan->cgroup_path = src.Str(o, "cgroupPath");
  plan->cgroup_tasks = src.StrList(o, "cgroupTasks");
  plan->netns_path = src.Str(o, "netns");
  plan->pidns_path = src.Str(o, "pidns");
  plan->net_helper = src.StrList(o, "netHelper");
  plan->net_helper_pid_file = src.Str(o, "netHelperPidFile");
  plan->seccomp_listener = src.Str(o, "seccompListener");
  plan->seccomp_state = src.Str(o, "seccompState");
  plan->enter_pidfd = static_cast<int>(src.Num(o, "enterPidfd", -1));
  plan->enter_flags = static_cast<uint64_t>(src.Num(o, "enterFlags", 0));

  int nops = src.Length(o, "ops");
  for (int i = 0; i < nops; i++) {
    auto e = src.At(o, "ops", i);
    if (!src.IsObject(e)) {
      *bad = "plan.ops[" + std::to_string(i) + "] is not an object";
      return false;
    }
    Op op;
    if (!ParseOpKind(src.Str(e, "op"), &op.kind)) {
      *bad = "plan.ops[" + std::to_string(i) + "]: unknown op '" + src.Str(e, "op") + "'";
      return false;
    }
    op.source = src.Str(e, "source");
    op.target = src.Str(e, "target");
    op.fstype = src.Str(e, "fstype");
    op.data = src.Str(e, "data");
    src.Bytes(e, "filter", &op.data);
    op.value = src.Str(e, "value");
    op.flags = static_cast<unsigned long>(src.Num(e, "flags", 0));
    op.attr_set = static_cast<uint64_t>(src.Num(e, "set", 0));
    op.attr_clear = static_cast<uint64_t>(src.Num(e, "clear", 0));
    op.caps = static_cast<uint64_t>(src.Num(e, "caps", 0));
    op.effective = static_cast<uint64_t>(src.Num(e, "effective", 0));
    op.permitted = static_cast<uint64_t>(src.Num(e, "permitted", 0));
    op.inheritable = static_cast<uint64_t>(src.Num(e, "inheritable", 0));
    op.prctl_option = static_cast<int>(src.Num(e, "option", 0));
    op.prctl_arg = static_cast<uint64_t>(src.Num(e, "arg", 0));
    op.mode = static_cast<unsigned>(src.Num(e, "mode", 0));
    if (op.kind == OpKind::kRlimit) {
      // -1 is RLIM_INFINITY (2^64-1 has no exact double).
      double soft = src.Num(e, "soft", -1), hard = src.Num(e, "hard", -1);
      op.prctl_option = static_cast<int>(src.Num(e, "resource", 0));
      op.rlim_cur = soft < 0 ? ~0ULL : static_cast<uint64_t>(soft);
      op.rlim_max = hard < 0 ? ~0ULL : static_cast<uint64_t>(hard);
    }
    if (op.kind == OpKind::kMknod) {
      op.dev = static_cast<uint64_t>(makedev(static_cast<unsigned>(src.Num(e, "major", 0)),
                                             static_cast<unsigned>(src.Num(e, "minor", 0))));
    }
    // Mount data that an older kernel may refuse (an overlay's `volatile`), and what to use then.
    if (op.kind == OpKind::kMount) op.value = src.Str(e, "fallbackData");
    if (op.kind == OpKind::kIdmapBind) {
      op.data = src.Str(e, "uidMap");
      op.value = src.Str(e, "gidMap");
      op.flags = src.Bool(e, "idmapRecursive", false) ? 1 : 0;
    }
    op.recursive = src.Bool(e, "recursive", false);
    op.optional = src.Bool(e, "optional", false);
    op.uid = static_cast<uint32_t>(src.Num(e, "uid", 0));
    op.fd = static_cast<int>(src.Num(e, "fd", -1));
    op.gid = static_cast<uint32_t>(src.Num(e, "gid", 0));
    int ngroups = src.Length(e, "groups");
    op.set_groups = ngroups >= 0;
    for (int j = 0; j < ngroups; j++) op.groups.push_back(static_cast<gid_t>(src.NumAt(e, "groups", j, 0)));
    plan->ops.push_back(std::move(op));
  }
  plan->Finish();
  return true;
}

}  // namespace nsbox
