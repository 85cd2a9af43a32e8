// The plan cache of nsbox-runc's `create`: what TypeScript compiled from a config.json (the spawn
// plan with its seccomp filter, the cgroup directories, the state and calls files as templates),
// stored under <root>/.plans/ by lib/oci/plan-cache.ts and keyed by everything the compilation read:
// the config's exact bytes, the bundle path, the runtime's build and the host facts (uid, kernel,
// capabilities, cgroup mounts, our own cgroup). This side builds the key; TypeScript only stores
// what it compiled under the key it is given, so the two never disagree on what a key holds.
//
// A second, parameterised key has the container id replaced by kIdHole everywhere in the bundle
// path and the config (containerd's bundle and cgroupsPath hold the id; nothing else of its config
// changes from one container to the next; a bundle and config without the id give a key without
// holes, the same for every id). TypeScript stores a parameterised entry only after a second
// compilation with another id gave the same plan with the holes filled otherwise.
#pragma once
#include <string>
#include <vector>

#include "../shim/plan-wire.h"

namespace nsbox::runc {

// In an entry's strings: the container id (\x02I); in its text templates also the init's pid
// (\x02P), its start time (\x02T) and the creation time (\x02C).
constexpr char kHole = '\x02';

struct PlanKey {
  std::string exact, param;            // param empty: the id is also in the facts, or the config has kHole
  std::string exact_file, param_file;  // <root>/.plans/<hash>
};

// bin/nsbox-runc.js beside this build (build/Release/nsbox-runc), or NSBOX_RUNC_JS.
std::string RuncJsPath();

// False when no key can be made (no JS bundle to identify the build, a config that is not readable):
// the command then goes to Node without a cache entry to fill.
bool MakePlanKey(const std::string& root, const std::string& bundle, const std::string& id, PlanKey* key);

// The entry for `key` (the parameterised one first), decoded and its key checked byte for byte.
// *param says which matched (its strings hold kHole + 'I'). False on a miss or an unreadable entry.
bool LoadPlanEntry(const PlanKey& key, WireValue* entry, bool* param);

// A memfd with the keys for TypeScript (NSBOX_RUNC_PLAN_KEY_FD), not close-on-exec:
//   "<kind> <file> <length>\n" then <length> key bytes, for kind exact and (if any) param.
int PlanKeyFd(const PlanKey& key);

// Every kHole+'I' in s replaced by the id.
std::string FillId(const std::string& s, const std::string& id);
void FillIdDeep(WireValue* v, const std::string& id);

}  // namespace nsbox::runc
