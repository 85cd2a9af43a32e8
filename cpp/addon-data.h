// Per-environment addon state (no C++ globals): the error class, live exit and close watches.
#pragma once
#include <napi.h>

#include <set>

namespace nsbox {

struct ExitWatch;
struct CloseWatch;
struct NftLib;

struct AddonData {
  Napi::FunctionReference error_class;
  std::set<ExitWatch*> watches;
  std::set<CloseWatch*> closeWatches;  // close-watch.cc
  NftLib* nft = nullptr;  // libnftables and its context, loaded on first use (netns.cc)
};

inline AddonData* GetData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

// Init functions for each part of the export table.
void InitSpawn(Napi::Env env, Napi::Object exports);
void InitPidfd(Napi::Env env, Napi::Object exports);
void InitPty(Napi::Env env, Napi::Object exports);
void InitMount(Napi::Env env, Napi::Object exports);
void InitFs(Napi::Env env, Napi::Object exports);
void InitFileBatch(Napi::Env env, Napi::Object exports);
void InitLayerGunzip(Napi::Env env, Napi::Object exports);
void InitLayerExtract(Napi::Env env, Napi::Object exports);
void InitSpawnProcess(Napi::Env env, Napi::Object exports);
void InitNetlink(Napi::Env env, Napi::Object exports);
void InitNetns(Napi::Env env, Napi::Object exports);
void InitFdPass(Napi::Env env, Napi::Object exports);
void InitCgroupBpf(Napi::Env env, Napi::Object exports);
void InitCgroupDirs(Napi::Env env, Napi::Object exports);
void InitCloseWatch(Napi::Env env, Napi::Object exports);
void CloseAllWatches(AddonData* data);
void CloseAllCloseWatches(AddonData* data);
void FreeNft(AddonData* data);

}  // namespace nsbox
