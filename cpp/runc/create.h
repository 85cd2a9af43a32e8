// `create` without Node when the plan cache (plan-cache.h) has the config compiled: create.cc.
#pragma once
#include <string>

namespace nsbox::runc {

struct CreateArgs {
  std::string root, id, bundle, pid_file;  // bundle and pid_file absolute, as path.resolve gives them
  int preserve_fds = 0;
};

// create's arguments from argv[i] on; false when they hold something only Node's create does
// (--console-socket, --pidfd-socket, an unknown flag) or are not one id.
bool ParseCreate(int argc, char** argv, int i, CreateArgs* a);

// True once the container is created from a cached entry. False: Node is to create it; *key_fd is
// then a memfd with the cache keys for Node to store its compilation under (-1 when none).
bool CreateFromCache(const CreateArgs& a, int* key_fd);

// The time now as Date.prototype.toISOString gives it: 2026-01-02T03:04:05.678Z (state.json's
// created, the log's time).
std::string IsoNow();

}  // namespace nsbox::runc
