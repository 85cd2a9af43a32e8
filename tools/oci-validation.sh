#!/usr/bin/env bash
# Runs ../shared/oci-validation/run (the runtime-tools validation suite) against a runtime with its
# cgroups kept beneath our own. The suite's cgroup programs give absolute cgroupsPaths
# (/cgrouptest) and read them back from each hierarchy's mount point; on these hosts no cgroup may
# be made at a hierarchy's root. So: a fresh cgroup <own>/$SUB in each hierarchy we sit in, this
# script's child moved into it, then a private mount and cgroup namespace in which that cgroup is
# each hierarchy's root (bind-mounted over its mount point, and the cgroup namespace's root, so
# /proc/PID/cgroup, which the relative-path programs read, agrees with the mounts). The host's
# mounts are not touched. Afterwards the empty cgroups left beneath $SUB are removed, deepest
# first; a cgroup with processes left is reported and kept.
#
# Usage: tools/oci-validation.sh RUNTIME [program ...]
# Env:   WORK (the suite's build and run dir, default /tmp/ocival), SUB (default nsbox-ocival),
#        NO_UNIFIED=1: unmount the cgroup2 mount inside the namespace (crun 1.x refuses a hybrid
#        host whose cgroup2 mount has a controller).
set -euo pipefail
RUNTIME=${1:?usage: tools/oci-validation.sh RUNTIME [program ...]}; shift
RUNTIME=$(readlink -f "$RUNTIME")
SUITE=$(readlink -f "$(dirname "$0")/../../shared/oci-validation/run")
[ -f "$SUITE" ] || SUITE=$(readlink -f "$(dirname "$0")/../../shared")/oci-validation/run
SUB=${SUB:-nsbox-ocival}
export WORK=${WORK:-/tmp/ocival}

# mount point of each hierarchy we sit in: "<mountpoint> <own path>", from /proc/self/cgroup
pairs=()
while IFS=: read -r _ ctrls own; do
  case $ctrls in name=*) continue ;; esac
  if [ -z "$ctrls" ]; then
    mp=$(findmnt -rn -t cgroup2 -o TARGET | head -1)
  else
    mp=$(findmnt -rn -t cgroup -o TARGET,OPTIONS | awk -v c="${ctrls%%,*}" '{n=split($2,o,","); for(i=1;i<=n;i++) if(o[i]==c) {print $1; exit}}')
  fi
  [ -n "$mp" ] && pairs+=("$mp ${own%/}/$SUB")
done < /proc/self/cgroup

for p in "${pairs[@]}"; do
  d="${p%% *}${p#* }"; mkdir -p "$d"
  # a new cpuset cgroup starts with no cpus and mems (no task may join it): the parent's
  for f in cpuset.cpus cpuset.mems; do
    [ -f "$d/$f" ] && [ -f "$(dirname "$d")/$f" ] && [ -z "$(cat "$d/$f")" ] && cat "$(dirname "$d")/$f" > "$d/$f"
  done
done
before=$(ls -d /tmp/ocitest* 2>/dev/null || true)
set +e
PAIRS="${pairs[*]}" SUITE="$SUITE" RUNTIME="$RUNTIME" bash -c '
  set -e
  read -ra a <<<"$PAIRS"
  for ((i = 0; i < ${#a[@]}; i += 2)); do echo $$ > "${a[i]}${a[i+1]}/cgroup.procs"; done
  exec unshare --mount --cgroup --propagation private bash -c "
    set -e
    read -ra a <<<\"\$PAIRS\"
    for ((i = 0; i < \${#a[@]}; i += 2)); do
      if [ \"\${NO_UNIFIED:-0}\" = 1 ] && [ \"\$(stat -f -c %T \${a[i]})\" = cgroup2fs ]; then umount \${a[i]}; continue; fi
      mount --bind \${a[i]}\${a[i+1]} \${a[i]}
    done
    RUNTIME=\$RUNTIME bash \$SUITE \"\$@\"
  " suite "$@"
' suite "$@"
rc=$?
set -e
for p in "${pairs[@]}"; do
  d="${p%% *}${p#* }"
  find "$d" -depth -mindepth 1 -type d -exec rmdir {} \; 2>/dev/null || true
  rmdir "$d" 2>/dev/null || echo "left: $d ($(find "$d" -name cgroup.procs -exec cat {} + | wc -l) processes)" >&2
done
for t in /tmp/ocitest*; do
  [ -e "$t" ] || continue
  grep -qxF "$t" <<<"$before" && continue
  if findmnt -rn -o TARGET | grep -q "^$t"; then echo "left mounted: $t" >&2; else rm -rf "$t"; fi
done
exit $rc
