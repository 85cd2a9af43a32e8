// nsbox: the command users run (issue 16). For `nsbox build` of a command line whose fast record
// (lib/build/build-fast-record.ts) says that nothing the last build read has changed and that its
// image is already in place, it does what that build's end would do (the cache records' use times,
// --iidfile) and prints its output, without starting Node. Anything else, or anything it does not
// recognise or cannot check, execs Node on bin/nsbox.js with the same arguments (as the script's
// `#!/usr/bin/env node` would: `node` looked up in PATH), so every other command behaves as
// before: same process, same stdio, signals and exit code.
//
// Static and small, as nsbox-runc: every command pays for this hop (an exec of a static binary).
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <signal.h>
#include <string>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <vector>
#include <algorithm>

extern char **environ;

namespace {

constexpr const char *kHeader = "nsbox-fast 1";
constexpr int64_t kMaxAgeMs = 86'400'000;  // build-plan.ts's PLAN_MAX_AGE_MS
constexpr size_t kMaxRecord = 64u << 20;

std::string dirOf(const std::string &p) {
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

// bin/nsbox.js beside this executable (installed as bin/nsbox), else the checkout's (build/Release/nsbox-launcher).
std::string scriptPath() {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return "";
  exe[n] = '\0';
  std::string dir = dirOf(exe);
  char real[PATH_MAX];
  for (const char *rel : {"/nsbox.js", "/../../bin/nsbox.js"})
    if (realpath((dir + rel).c_str(), real)) return real;
  return "";
}

[[noreturn]] void runNode(char **argv) {
  std::string script = scriptPath();
  if (script.empty()) {
    dprintf(2, "nsbox: cannot find bin/nsbox.js beside %s\n", argv[0]);
    _exit(127);
  }
  std::vector<char *> args{const_cast<char *>("node"), script.data()};
  for (int i = 1; argv[i]; i++) args.push_back(argv[i]);
  args.push_back(nullptr);
  execvp("node", args.data());
  int err = errno;
  // as env(1) says it when `#!/usr/bin/env node` finds no node
  dprintf(2, "nsbox: 'node': %s\n", strerror(err));
  _exit(err == ENOENT ? 127 : 126);
}

uint64_t fnv64(const char *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) {
    h ^= static_cast<unsigned char>(p[i]);
    h *= 0x100000001b3ull;
  }
  return h;
}

bool isKeyVar(const char *kv) {
  auto starts = [kv](const char *p) { return strncmp(kv, p, strlen(p)) == 0; };
  return starts("NSBOX_") || starts("XDG_") || starts("SOURCE_DATE_EPOCH=") || starts("DOCKER_CONFIG=") || starts("HOME=");
}

// node's path.resolve(cwd, p): absolute, without `.`, `..` or repeated slashes.
std::string resolve(const std::string &cwd, const std::string &p) {
  std::string in = p[0] == '/' ? p : cwd + "/" + p;
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= in.size()) {
    size_t j = in.find('/', i);
    if (j == std::string::npos) j = in.size();
    std::string seg = in.substr(i, j - i);
    if (seg == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!seg.empty() && seg != ".") {
      parts.push_back(seg);
    }
    i = j + 1;
  }
  std::string out;
  for (auto &s : parts) out += "/" + s;
  return out.empty() ? "/" : out;
}

// The store's root as lib/storage/layout.ts's defaultRoot; empty when it needs the password file.
std::string storeRoot(const std::string &cwd) {
  const char *v = getenv("NSBOX_ROOT");
  if (v && *v) return resolve(cwd, v);
  if (geteuid() == 0) return "/var/lib/nsbox";
  const char *data = getenv("XDG_DATA_HOME");
  if (data && *data) return resolve(cwd, data) + "/nsbox";
  const char *home = getenv("HOME");
  if (home && *home) return resolve(cwd, std::string(home) + "/.local/share") + "/nsbox";
  return "";
}

bool readAll(const char *path, std::string &out, size_t max) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<size_t>(st.st_size) <= max;
  if (ok) {
    out.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (ok) {
      if (got == out.size()) out.resize(out.size() + 4096);
      ssize_t n = read(fd, &out[got], out.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || (got + static_cast<size_t>(n) > max)) ok = false;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    out.resize(got);
  }
  close(fd);
  return ok;
}

bool writeAll(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// A cursor over the record; every reader answers false on anything unexpected.
struct Reader {
  const std::string &s;
  size_t at = 0;
  bool lit(const char *word) {
    size_t n = strlen(word);
    if (s.compare(at, n, word) != 0) return false;
    at += n;
    return true;
  }
  bool num(int64_t &v) {
    size_t start = at;
    bool neg = at < s.size() && s[at] == '-';
    if (neg) at++;
    uint64_t x = 0;
    while (at < s.size() && s[at] >= '0' && s[at] <= '9') {
      if (x > (UINT64_MAX - 9) / 10) return false;
      x = x * 10 + static_cast<uint64_t>(s[at++] - '0');
    }
    if (at == start + (neg ? 1 : 0)) return false;
    v = neg ? -static_cast<int64_t>(x) : static_cast<int64_t>(x);
    return true;
  }
  bool unum(uint64_t &v) {
    size_t start = at;
    uint64_t x = 0;
    while (at < s.size() && s[at] >= '0' && s[at] <= '9') {
      if (x > (UINT64_MAX - 9) / 10) return false;
      x = x * 10 + static_cast<uint64_t>(s[at++] - '0');
    }
    v = x;
    return at > start;
  }
  // LEN:BYTES
  bool str(std::string &out) {
    uint64_t n;
    if (!unum(n) || !lit(":") || n > s.size() - at) return false;
    out.assign(s, at, n);
    at += n;
    return true;
  }
};

struct Stat {
  uint64_t dev, ino, mode, uid, gid, size;
  int64_t mtime, ctime;
};

bool readStat(Reader &r, Stat &e) {
  return r.lit(" ") && r.unum(e.dev) && r.lit(" ") && r.unum(e.ino) && r.lit(" ") && r.unum(e.mode) && r.lit(" ") && r.unum(e.uid) && r.lit(" ") &&
         r.unum(e.gid) && r.lit(" ") && r.unum(e.size) && r.lit(" ") && r.num(e.mtime) && r.lit(" ") && r.num(e.ctime);
}

int64_t ns(const struct timespec &t) { return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec; }

bool sameStat(const struct stat &st, const Stat &e) {
  return st.st_dev == e.dev && st.st_ino == e.ino && st.st_mode == e.mode && st.st_uid == e.uid && st.st_gid == e.gid &&
         static_cast<uint64_t>(st.st_size) == e.size && ns(st.st_mtim) == e.mtime && ns(st.st_ctim) == e.ctime;
}

// Whether fd may be a terminal (build.ts's `auto` then shows the live view): a character device but /dev/null's kind.
bool maybeTerminal(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) != 1;
}

struct Output {
  int fd;
  std::string text;
};

// The fast path: true when the build was answered (exit 0), false to run Node (nothing done that Node would not redo).
bool fastBuild(int argc, char **argv) {
  char cwdBuf[PATH_MAX];
  if (!getcwd(cwdBuf, sizeof cwdBuf)) return false;
  std::string cwd = cwdBuf;
  std::string root = storeRoot(cwd);
  if (root.empty()) return false;

  std::vector<std::string> vars;
  for (char **e = environ; *e; e++)
    if (isKeyVar(*e) && strchr(*e, '=')) vars.emplace_back(*e);
  auto name = [](const std::string &kv) { return kv.substr(0, kv.find('=')); };
  std::sort(vars.begin(), vars.end(), [&](const std::string &a, const std::string &b) { return name(a) < name(b); });
  for (size_t i = 1; i < vars.size(); i++)
    if (name(vars[i]) == name(vars[i - 1])) return false;  // which one Node sees is not ours to guess
  std::string key = std::string(kHeader) + '\0' + "euid=" + std::to_string(geteuid()) + '\0' + "cwd=" + cwd + '\0' + "argc=" + std::to_string(argc - 1);
  for (int i = 1; i < argc; i++) key += std::string(1, '\0') + argv[i];
  for (auto &v : vars) key += std::string(1, '\0') + v;

  char hex[17];
  snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv64(key.data(), key.size())));
  std::string file = root + "/build-plans/" + hex + ".fast";
  std::string rec;
  if (!readAll(file.c_str(), rec, kMaxRecord)) return false;

  Reader r{rec};
  std::string got;
  int64_t made, notty;
  if (!(r.lit(kHeader) && r.lit("\nkey ") && r.str(got) && got == key && r.lit("\nmade ") && r.num(made) && r.lit("\nnotty ") && r.num(notty) && r.lit("\n"))) return false;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  if (ns(now) / 1'000'000 - made > kMaxAgeMs) return false;
  if (notty && maybeTerminal(2)) return false;

  std::vector<std::string> touch;
  std::string iidPath, iidText;
  bool iid = false;
  std::vector<Output> out;
  std::string path, content;
  for (;;) {
    if (r.lit("end\n")) break;
    if (r.at + 2 > rec.size() || rec[r.at + 1] != ' ') return false;
    char kind = rec[r.at];
    r.at += 2;
    if (kind == 'O') {
      int64_t fd;
      Output o;
      if (!(r.num(fd) && (fd == 1 || fd == 2) && r.lit(" ") && r.str(o.text) && r.lit("\n"))) return false;
      o.fd = static_cast<int>(fd);
      out.push_back(std::move(o));
      continue;
    }
    if (!r.str(path) || path.empty() || path.find('\0') != std::string::npos) return false;
    struct stat st;
    switch (kind) {
      case 'L':
      case 'S': {
        Stat e;
        if (!readStat(r, e)) return false;
        if ((kind == 'L' ? lstat(path.c_str(), &st) : stat(path.c_str(), &st)) != 0 || !sameStat(st, e)) return false;
        break;
      }
      case 'A':
        if (lstat(path.c_str(), &st) == 0 || (errno != ENOENT && errno != ENOTDIR)) return false;
        break;
      case 'D':
        if (lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;
        break;
      case 'F':
        if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
        break;
      case 'H': {
        uint64_t size;
        std::string want;
        if (!(r.lit(" ") && r.unum(size) && r.lit(" ") && r.at + 16 <= rec.size())) return false;
        want.assign(rec, r.at, 16);
        r.at += 16;
        if (!readAll(path.c_str(), content, size) || content.size() != size) return false;
        snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv64(content.data(), content.size())));
        if (want != hex) return false;
        break;
      }
      case 'T':
        touch.push_back(path);
        break;
      case 'I':
        if (!(r.lit(" ") && r.str(iidText))) return false;
        iidPath = path;
        iid = true;
        break;
      default:
        return false;
    }
    if (!r.lit("\n")) return false;
  }
  if (r.at != rec.size()) return false;

  // Everything holds: the build's end. A record gone meanwhile sends it to Node, as the quick build does.
  for (auto &t : touch)
    if (utimensat(AT_FDCWD, t.c_str(), nullptr, 0) != 0) return false;
  if (iid) {
    int fd = open(iidPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) return false;
    bool ok = writeAll(fd, iidText.data(), iidText.size());
    if (close(fd) != 0 || !ok) return false;
  }
  // As Node's CLI: a closed pipe ends the output quietly.
  signal(SIGPIPE, SIG_IGN);
  for (auto &o : out)
    if (!writeAll(o.fd, o.text.data(), o.text.size())) break;
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "build") == 0 && fastBuild(argc, argv)) return 0;
  runNode(argv);
}
