// Docker's restart policies, as the shim applies them between runs of its container.
#pragma once
#include <string>

namespace nsbox {

struct RestartPolicy {
  enum Kind { kNo, kOnFailure, kAlways, kUnlessStopped } kind = kNo;
  int max_retries = 0;  // on-failure:N; 0 = no limit
};

// "no", "on-failure", "on-failure:N", "always", "unless-stopped" ("" = "no").
bool ParseRestart(const std::string& s, RestartPolicy* p);

// Whether a run that ended (`failed`: a non-zero exit or a signal) starts again, after `restarts`
// restarts so far. A stop by hand is not asked about: it never restarts.
bool ShouldRestart(const RestartPolicy& p, bool failed, int restarts);

// The wait before the next start: docker's 100 ms, doubling up to a minute, back to the start
// after a run of 10 s or more.
long NextBackoffMs(long previous_ms, long long ran_ms);

}  // namespace nsbox
