#include "plan-cache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "../unique-fd.h"
#include "../cgroup-ops.h"

namespace nsbox::runc {
namespace {

// Identifies a file's version: device, inode, size and modification time.
bool FileId(const std::string& path, std::string* out) {
  struct stat st;
  if (stat(path.c_str(), &st) < 0) return false;
  char b[160];
  snprintf(b, sizeof b, "%llu:%llu:%lld:%lld.%09ld", static_cast<unsigned long long>(st.st_dev), static_cast<unsigned long long>(st.st_ino),
           static_cast<long long>(st.st_size), static_cast<long long>(st.st_mtim.tv_sec), st.st_mtim.tv_nsec);
  *out += path + " " + b + "\n";
  return true;
}

bool AddFile(const char* path, std::string* out) {
  std::string text;
  int e;
  if (!ReadFile(path, &text, &e)) return false;
  *out += std::string(path) + " " + std::to_string(text.size()) + "\n" + text;
  return true;
}

// The cgroup mounts of this mount namespace (mountinfo lines whose type is cgroup or cgroup2).
bool AddCgroupMounts(std::string* out) {
  std::string text;
  int e;
  if (!ReadFile("/proc/self/mountinfo", &text, &e)) return false;
  *out += "cgroup-mounts\n";
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(at, nl - at);
    at = nl + 1;
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    if (line.compare(dash + 3, 7, "cgroup ") == 0 || line.compare(dash + 3, 8, "cgroup2 ") == 0) {
      // Without the mount ids (fields 1-2), which say nothing about the layout.
      size_t sp = line.find(' ', line.find(' ') + 1);
      *out += line.substr(sp + 1) + "\n";
    }
  }
  return true;
}

bool AddCapLines(std::string* out) {
  std::string text;
  int e;
  if (!ReadFile("/proc/self/status", &text, &e)) return false;
  size_t at = 0;
  while ((at = text.find("\nCap", at)) != std::string::npos) {
    size_t nl = text.find('\n', at + 1);
    *out += text.substr(at + 1, nl - at);
    at = nl == std::string::npos ? text.size() : nl;
  }
  return true;
}

std::string Hash(const std::string& s) {
  // FNV-1a twice (two offsets): a file name only; the entry holds the whole key and is compared.
  uint64_t a = 14695981039346656037ULL, b = 0x6c62272e07bb0142ULL;
  for (unsigned char c : s) {
    a = (a ^ c) * 1099511628211ULL;
    b = (b ^ c) * 1099511628211ULL;
  }
  char out[40];
  snprintf(out, sizeof out, "%016llx%016llx", static_cast<unsigned long long>(a), static_cast<unsigned long long>(b));
  return out;
}

std::string ReplaceAll(const std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  std::string out;
  size_t at = 0;
  for (size_t hit; (hit = s.find(from, at)) != std::string::npos; at = hit + from.size()) out.append(s, at, hit - at).append(to);
  return out.append(s, at, std::string::npos);
}

}  // namespace

std::string RuncJsPath() {
  const char* js_env = getenv("NSBOX_RUNC_JS");
  if (js_env && *js_env) return js_env;
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0) return "";
  self[n] = 0;
  return std::string(self, strrchr(self, '/') - self) + "/../../bin/nsbox-runc.js";
}

bool MakePlanKey(const std::string& root, const std::string& bundle, const std::string& id, PlanKey* key) {
  std::string facts = "nsbox-runc-plan 1\n";
  std::string js = RuncJsPath();
  if (js.empty()) return false;
  std::string jsdir = js.substr(0, js.rfind('/'));
  // The build: this program, the JS entry and the bundle it runs (without a bundle, dist/ runs:
  // too many files to identify, so no cache).
  if (!FileId("/proc/self/exe", &facts) || !FileId(js, &facts) || !FileId(jsdir + "/../dist/runc-bundle/nsbox-runc.cjs", &facts)) return false;
  struct utsname u;
  if (uname(&u) < 0) return false;
  facts += std::string("kernel ") + u.release + " " + u.version + " " + u.machine + "\n";
  facts += "ids " + std::to_string(getuid()) + " " + std::to_string(geteuid()) + " " + std::to_string(getgid()) + " " + std::to_string(getegid()) + "\n";
  if (!AddFile("/proc/self/uid_map", &facts) || !AddFile("/proc/self/gid_map", &facts) || !AddFile("/proc/self/cgroup", &facts) ||
      !AddFile("/proc/sys/kernel/cap_last_cap", &facts) || !AddCapLines(&facts) || !AddCgroupMounts(&facts))
    return false;
  facts += "root " + root + "\n";
  std::string config;
  int e;
  if (!ReadFile(bundle + "/config.json", &config, &e)) return false;
  std::string rest = "bundle " + bundle + "\nconfig " + std::to_string(config.size()) + "\n" + config;
  // The id too: an exact entry's state and calls hold it as text (only a param entry has it as a
  // hole), so another id from the same bundle and config must miss.
  key->exact = facts + "id " + id + "\n" + rest;
  const std::string dir = root + "/.plans/";
  key->exact_file = dir + Hash(key->exact);
  // The id as a parameter only where it is the container's: not in the facts, not in the holes' text.
  // An id in neither the bundle path nor the config gets a param key as well (the same for every
  // id): only the state and calls hold it then, and TypeScript stores the entry only when a second
  // compilation for another id agrees, so an id that is also other text (a short one) is not stored.
  if (facts.find(id) == std::string::npos && config.find(kHole) == std::string::npos &&
      config.find("\\u0002") == std::string::npos) {
    const std::string hole = std::string(1, kHole) + "I", config_p = ReplaceAll(config, id, hole);
    key->param = facts + "param\nbundle " + ReplaceAll(bundle, id, hole) + "\nconfig " + std::to_string(config_p.size()) + "\n" + config_p;
    key->param_file = dir + Hash(key->param);
  }
  return true;
}

bool LoadPlanEntry(const PlanKey& key, WireValue* entry, bool* param) {
  for (int i = 0; i < 2; i++) {
    const std::string& k = i == 0 ? key.param : key.exact;
    const std::string& file = i == 0 ? key.param_file : key.exact_file;
    if (k.empty()) continue;
    std::string data, err;
    int e;
    if (!ReadFile(file, &data, &e)) continue;
    WireValue v;
    if (!DecodeWire(data, &v, &err) || v.type != 'o') continue;
    const WireValue* stored = v.Field("key");
    if (!stored || stored->type != 'x' || stored->str != k) continue;
    *entry = std::move(v);
    *param = i == 0;
    return true;
  }
  return false;
}

int PlanKeyFd(const PlanKey& key) {
  UniqueFd fd(memfd_create("nsbox-runc-plan-key", 0));
  if (!fd.valid()) return -1;
  std::string out;
  out += "exact " + key.exact_file + " " + std::to_string(key.exact.size()) + "\n" + key.exact;
  if (!key.param.empty()) out += "param " + key.param_file + " " + std::to_string(key.param.size()) + "\n" + key.param;
  for (size_t at = 0; at < out.size();) {
    ssize_t n = write(fd.get(), out.data() + at, out.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    at += static_cast<size_t>(n);
  }
  return fd.release();
}

std::string FillId(const std::string& s, const std::string& id) { return ReplaceAll(s, std::string(1, kHole) + "I", id); }

void FillIdDeep(WireValue* v, const std::string& id) {
  if (v->type == 's') v->str = FillId(v->str, id);
  for (auto& item : v->items) FillIdDeep(&item, id);
  for (auto& f : v->fields) FillIdDeep(&f.second, id);
}

}  // namespace nsbox::runc
