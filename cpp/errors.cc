#include "errors.h"

#include <string.h>

#include "addon-data.h"
#include "spawn-core.h"

namespace nsbox {

Napi::Error MakeSysError(Napi::Env env, int err, const std::string& syscall, const std::string& path,
                         const std::string& what) {
  std::string code = ErrnoName(err);
  std::string message = (what.empty() ? syscall + (path.empty() ? "" : " " + path) : what) + ": " + code +
                        " (" + strerror(err) + ")";
  Napi::Object details = Napi::Object::New(env);
  details.Set("code", code);
  details.Set("errno", Napi::Number::New(env, err));
  details.Set("syscall", syscall);
  if (!path.empty()) details.Set("path", path);
  AddonData* data = GetData(env);
  if (data != nullptr && !data->error_class.IsEmpty()) {
    Napi::Value e = data->error_class.New({Napi::String::New(env, message), details});
    if (!env.IsExceptionPending()) return Napi::Error(env, e);
    env.GetAndClearPendingException();
  }
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", code);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", syscall);
  if (!path.empty()) e.Set("path", path);
  return e;
}

void ReportCallbackFailure(napi_env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending) return;
  napi_value thrown;
  if (napi_get_and_clear_last_exception(env, &thrown) == napi_ok) napi_fatal_exception(env, thrown);
}

}  // namespace nsbox
