#!/usr/bin/env bash
# `npm test`: a type-check of test/ and bench/, then the unit tests (no root; files in parallel),
# then the integration tests (root, the real kernel; one file at a time), each with its own ava
# config; each runs whatever the one before gave. Options (.ci/run passes --tap) go to both ava
# runs; with test files named, one plain `ava FILES...` runs them under package.json's config.
# ava runs through test/ava.mjs, which keeps its TAP reporter alive on a run's timeout.
set -uo pipefail
cd "$(dirname "$0")/.."

for a in "$@"; do
  case $a in -*) ;; *) exec node test/ava.mjs "$@" ;; esac
done

# Built before the integration files start, so that no test's timeout pays for it.
if [ "$(id -u)" = 0 ]; then bash test/fixtures/make-rootfs.sh >/dev/null || exit 1; fi

rc=0
# The tests and benchmarks are type-checked too (tsx runs them without checking), so they can't
# drift from lib/'s types unseen.
if ! npx tsc -p tsconfig.test.json; then
  echo "type-check of test/ and bench/ (tsc -p tsconfig.test.json) FAILED" >&2; rc=1
fi
node test/ava.mjs --config test/ava.unit.config.js "$@" || rc=1
node test/ava.mjs --config test/ava.integration.config.js "$@" || rc=1
exit $rc
