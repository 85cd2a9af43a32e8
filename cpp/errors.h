// Errors cross the boundary in one shape: the JS class NsboxError (registered by lib/native.ts),
// constructed with (message, { code, errno, syscall, path }).
#pragma once
#include <napi.h>

#include <string>

namespace nsbox {

struct AddonData;

// "EINVAL" for EINVAL; the number as text if the libc has no name for it.
std::string ErrnoName(int err);

// An NsboxError for a failed syscall. message defaults to "<syscall> <path>: <CODE>".
Napi::Error MakeSysError(Napi::Env env, int err, const std::string& syscall, const std::string& path,
                         const std::string& what = "");

// After a napi_make_callback from a uv callback failed: the exception the callback threw becomes
// an uncaught exception, as for Node's own callbacks. None pending: the environment runs no more
// JavaScript (a watch that fires in the teardown's last turns of the loop), and nothing is told.
void ReportCallbackFailure(napi_env env);

// Throws a TypeError for a malformed call from lib/native.ts (a bug in the library, not user input).
#define NSBOX_CHECK_ARG(env, cond, msg)                                   \
  do {                                                                    \
    if (!(cond)) {                                                        \
      Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();        \
      return env.Undefined();                                             \
    }                                                                     \
  } while (0)

}  // namespace nsbox
