#include "restart-policy.h"

#include <stdlib.h>

namespace nsbox {
namespace {

// A container that ran this long before exiting restarts without the backoff it had built up.
constexpr long long kResetBackoffMs = 10000;
constexpr long kFirstBackoffMs = 100;
constexpr long kMaxBackoffMs = 60000;

}  // namespace

bool ParseRestart(const std::string& s, RestartPolicy* p) {
  *p = RestartPolicy();
  if (s.empty() || s == "no") return true;
  if (s == "always") p->kind = RestartPolicy::kAlways;
  else if (s == "unless-stopped") p->kind = RestartPolicy::kUnlessStopped;
  else if (s.compare(0, 10, "on-failure") == 0) {
    p->kind = RestartPolicy::kOnFailure;
    if (s.size() == 10) return true;
    if (s[10] != ':' || s.size() == 11 || s.size() > 20) return false;
    for (size_t i = 11; i < s.size(); i++) {
      if (s[i] < '0' || s[i] > '9') return false;
    }
    p->max_retries = atoi(s.c_str() + 11);
  } else {
    return false;
  }
  return true;
}

bool ShouldRestart(const RestartPolicy& p, bool failed, int restarts) {
  switch (p.kind) {
    case RestartPolicy::kNo: return false;
    case RestartPolicy::kOnFailure: return failed && (p.max_retries == 0 || restarts < p.max_retries);
    // The two differ only for an engine coming back up (a stopped container stays stopped): here
    // the shim itself stops either one for good on SIGTERM.
    case RestartPolicy::kAlways:
    case RestartPolicy::kUnlessStopped: return true;
  }
  return false;
}

long NextBackoffMs(long previous_ms, long long ran_ms) {
  if (ran_ms >= kResetBackoffMs || previous_ms == 0) return kFirstBackoffMs;
  return previous_ms * 2 > kMaxBackoffMs ? kMaxBackoffMs : previous_ms * 2;
}

}  // namespace nsbox
