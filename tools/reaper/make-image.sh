#!/usr/bin/env bash
# Builds an image that does Ryuk's job (tools/reaper/reaper.mjs, run by this host's node binary,
# copied in with its shared libraries) and tags it TAG, for hosts that cannot pull
# testcontainers/ryuk (no registry access). Tag it with the exact name testcontainers asks for:
#
#   tools/reaper/make-image.sh "$(node -p "require('testcontainers/build/reaper/reaper.js').REAPER_IMAGE")"
#
# The image is imported with `nsbox import` (nsbox's store, NSBOX_ROOT), or with the command given
# after TAG, which takes docker's import syntax: `make-image.sh TAG docker` through `nsbox serve`'s
# socket (DOCKER_HOST), `make-image.sh TAG node bin/nsbox.js` from a checkout.
# The image carries Ryuk's label org.testcontainers.ryuk=true: reapers spare containers that have it
# (testcontainers labels its reaper with the session it reaps, so the reaper would match itself).
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 TAG [import command, default: nsbox]" >&2; exit 2; }
tag=$1
shift
[ $# -gt 0 ] || set -- nsbox
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
node=$(readlink -f "$(command -v node)")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ctx=$work/rootfs
install -d -m 0755 "$ctx/usr/bin" "$ctx/reaper" "$ctx/tmp"
chmod 1777 "$ctx/tmp"
cp "$node" "$ctx/usr/bin/node"
# The loader and every library ldd names, at the paths the binary asks for.
for lib in $(ldd "$node" | grep -o '/[^ ]*'); do
  install -d -m 0755 "$ctx$(dirname "$lib")"
  cp -L "$lib" "$ctx$lib"
done
cp "$here/reaper.mjs" "$ctx/reaper/reaper.mjs"
tar -C "$ctx" --owner=0 --group=0 --numeric-owner -cf "$work/rootfs.tar" .

"$@" import \
  -c 'ENTRYPOINT ["/usr/bin/node", "/reaper/reaper.mjs"]' \
  -c 'EXPOSE 8080' \
  -c 'LABEL org.testcontainers.ryuk=true' \
  "$work/rootfs.tar" "$tag"
