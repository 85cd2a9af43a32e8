#include "json-log.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "bundle-files.h"
#include "plan-wire.h"

namespace nsbox {
namespace {

constexpr size_t kMaxLine = 16 * 1024;

}  // namespace

bool JsonLog::Open(int dir) {
  fd_.reset(openat(dir, bundle::kLog, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
  return fd_.valid();
}

void JsonLog::Append(OutputStream* s, const char* data, size_t len) {
  const char* p = data;
  const char* end = data + len;
  while (p < end) {
    const char* nl = static_cast<const char*>(memchr(p, '\n', static_cast<size_t>(end - p)));
    size_t take = nl != nullptr ? static_cast<size_t>(nl - p) + 1 : static_cast<size_t>(end - p);
    if (kMaxLine - s->partial.size() < take) take = kMaxLine - s->partial.size();
    s->partial.append(p, take);
    p += take;
    if (s->partial.back() == '\n' || s->partial.size() >= kMaxLine) {
      Line(*s, s->partial.data(), s->partial.size());
      s->partial.clear();
    }
  }
}

void JsonLog::Flush(OutputStream* s) {
  if (!s->partial.empty()) Line(*s, s->partial.data(), s->partial.size());
  s->partial.clear();
}

void JsonLog::Line(const OutputStream& s, const char* data, size_t len) {
  std::string line = "{\"log\":" + JsonQuote(std::string(data, len)) + ",\"stream\":\"" + s.name + "\",\"time\":\"" +
                     bundle::Timestamp() + "\"}\n";
  // A full disk loses lines, never the container: it does not wait for its log.
  if (write(fd_.get(), line.data(), line.size()) < 0) {
  }
}

}  // namespace nsbox
