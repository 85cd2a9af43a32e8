// File metadata helpers shared by the addon's writers (file-batch.cc, layer-extract.cc).
#pragma once

#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include <cmath>

namespace nsbox {

// Seconds (a tar header's or JS's fractional time) as a timespec; an out-of-range fraction is 0.
inline timespec ToTimespec(double seconds) {
  double whole = std::floor(seconds);
  timespec ts;
  ts.tv_sec = static_cast<time_t>(whole);
  ts.tv_nsec = static_cast<long>((seconds - whole) * 1e9);
  if (ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000) ts.tv_nsec = 0;
  return ts;
}

// The process's umask, from /proc/self/status (umask(2) cannot read it without setting it, which
// would race with other threads creating files); all bits when the kernel does not say (before 4.7).
inline mode_t CurrentUmask() {
  mode_t mask = 07777;
  FILE* f = fopen("/proc/self/status", "re");
  if (!f) return mask;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    unsigned int m;
    if (sscanf(line, "Umask: %o", &m) == 1) {
      mask = static_cast<mode_t>(m);
      break;
    }
  }
  fclose(f);
  return mask;
}

}  // namespace nsbox
