{
  "targets": [
    {
      "target_name": "nsbox",
      "sources": [
        "cpp/addon.cc", "cpp/errors.cc", "cpp/spawn.cc", "cpp/spawn-core.cc", "cpp/setup-ops.cc", "cpp/clone-run.cc",
        "cpp/pidfd.cc", "cpp/close-watch.cc", "cpp/pty.cc", "cpp/mount.cc", "cpp/fs.cc", "cpp/file-batch.cc", "cpp/layer-gunzip.cc", "cpp/layer-extract.cc", "cpp/spawn-process.cc", "cpp/netlink.cc", "cpp/netns.cc", "cpp/fd-pass.cc", "cpp/cgroup-bpf.cc", "cpp/cgroup-ops.cc", "cpp/cgroup-dirs.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_DISABLE_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-fno-exceptions"],
      "cflags_cc!": ["-fno-rtti"],
      "libraries": ["-ldl", "<!@(sh -c 'test -f /usr/include/isa-l/igzip_lib.h && echo -lisal || true')"],
      "defines+": ["<!@(sh -c 'test -f /usr/include/isa-l/igzip_lib.h && echo NSBOX_HAVE_ISAL || true')"]
    },
    {
      "target_name": "nsbox-shim",
      "type": "executable",
      "sources": [
        "cpp/spawn-core.cc", "cpp/setup-ops.cc", "cpp/clone-run.cc",
        "cpp/shim/main.cc", "cpp/shim/supervisor.cc", "cpp/shim/start.cc", "cpp/shim/attach-server.cc",
        "cpp/shim/json-log.cc", "cpp/shim/restart-policy.cc", "cpp/shim/bundle-files.cc", "cpp/shim/oom-watch.cc",
        "cpp/shim/plan-wire.cc", "cpp/shim/health.cc", "cpp/shim/port-proxy.cc"
      ],
      "defines": ["_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-fno-exceptions", "-Os"],
      "ldflags": ["-static-libstdc++", "-static-libgcc", "-Wl,--gc-sections"]
    },
    {
      "target_name": "nsbox-runc",
      "type": "executable",
      "sources": ["cpp/runc/main.cc", "cpp/runc/container.cc", "cpp/cgroup-ops.cc", "cpp/runc/create.cc", "cpp/runc/plan-cache.cc", "cpp/cgroup-bpf.cc", "cpp/spawn-core.cc", "cpp/setup-ops.cc", "cpp/clone-run.cc", "cpp/shim/plan-wire.cc"],
      "defines": ["_GNU_SOURCE", "NSBOX_NODE_PATH=\"<!(node -p process.execPath)\""],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-fno-exceptions", "-Os"],
      "ldflags": ["-static", "-static-libstdc++", "-static-libgcc", "-Wl,--gc-sections"]
    },
    {
      "target_name": "nsbox-launcher",
      "type": "executable",
      "sources": ["cpp/launcher/main.cc"],
      "defines": ["_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-fno-exceptions", "-Os"],
      "ldflags": ["-static", "-static-libstdc++", "-static-libgcc", "-Wl,--gc-sections"]
    }
  ]
}
