// container.log: the container's output as docker's json-file lines,
// {"log":"…\n","stream":"stdout","time":"…"} (LogEntrySchema in lib/runtime/bundle.ts).
#pragma once
#include <stddef.h>

#include <string>

#include "../unique-fd.h"

namespace nsbox {

// One of the container's output streams: its pipe (or the pty master) and the line it is in.
struct OutputStream {
  UniqueFd fd;
  const char* name;     // "stdout", "stderr"
  int frame;            // its attach frame type
  std::string partial;  // a line without its newline yet
};

class JsonLog {
 public:
  // Opens (appends to) container.log in the bundle; false with errno set.
  bool Open(int dir);
  // Logs each complete line of `data`; a line longer than 16 KiB is logged in pieces (as docker's
  // json-file does), the rest waits in the stream for its newline.
  void Append(OutputStream* s, const char* data, size_t len);
  // Logs what is left of the stream's last line (the stream ended).
  void Flush(OutputStream* s);

 private:
  void Line(const OutputStream& s, const char* data, size_t len);
  UniqueFd fd_;
};

}  // namespace nsbox
