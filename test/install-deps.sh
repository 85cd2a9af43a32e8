#!/usr/bin/env bash
# Installs, on Debian 12 as root, the packages that building nsbox and running its whole test suite
# need; what is already installed is left alone, so a second run does nothing. The README's test
# command and .ci/run both start with it, so the two cannot drift.
#
#   bash test/install-deps.sh && npm install && npm test
#
# busybox-static: the test rootfs; cmake, g++, make, python3: the addon; libisal-dev: the addon's
# fast layer gunzip (ISA-L's igzip; without it the addon builds with zlib); docker-registry, skopeo,
# umoci, apache2-utils (htpasswd), openssl: the image tests' own registries and images; uidmap,
# passwd: rootless containers with subordinate ids (newuidmap, useradd); util-linux, iproute2:
# setpriv, unshare, script, ip; buildah: the builder's peer in test/integration/build-buildah.test.ts;
# nftables, libnftables1, aardvark-dns, iperf3: bridge networking (nsbox loads libnftables;
# aardvark-dns is the DNS of user networks) and its benchmark; passt (pasta): rootless networking,
# slirp4netns: its benchmark's peer; containerd (and its ctr), runc:
# nsbox-runc under containerd (test/integration/oci-containerd.test.ts) and its benchmark's peer;
# docker-compose: Debian's compose v1 (Python, API 1.41) against nsbox serve in
# test/integration/compose.test.ts; strace: a delay injected into nsbox-runc start (oci-runc.test.ts).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

pkgs=(busybox-static util-linux iproute2 cmake g++ make python3 libisal-dev docker-registry skopeo umoci apache2-utils openssl uidmap passwd buildah nftables libnftables1 aardvark-dns iperf3 passt slirp4netns containerd runc docker-compose strace)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all installed (${pkgs[*]})"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing ${missing[*]}; run this as root (the tests that need them skip, saying so)" >&2
  exit 1
fi

# The docker-registry package would start its own service on :5000 on every interface: keep apt
# from starting services while it installs (the tests run their own registries on 127.0.0.1).
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt=(apt-get -o DPkg::Lock::Timeout=600 -y -q)
echo "install-deps: apt-get install ${missing[*]}"
# A fresh machine's package lists may be missing or stale: update once if the first try fails.
"${apt[@]}" install --no-install-recommends "${missing[@]}" >/dev/null ||
  { "${apt[@]}" update >/dev/null && "${apt[@]}" install --no-install-recommends "${missing[@]}" >/dev/null; }
echo "install-deps: installed ${missing[*]}"
