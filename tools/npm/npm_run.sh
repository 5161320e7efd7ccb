#!/usr/bin/env bash
# npm_run.sh NODE_MODULES MANIFEST COMMAND: the runner behind //tools/npm:defs.bzl (Tally's own
# stand-in for rules_js).
#
# Copies the sources MANIFEST lists (lines "PATH<TAB>PACKAGE-RELATIVE PATH") into a fresh work
# directory, gives it a node_modules directory of symlinks to NODE_MODULES' entries (a real
# directory, so tools can write their caches into it, e.g. node_modules/.vite, while the
# installed packages stay read-only), then runs the bash COMMAND there and exits with its status.
# COMMAND may use $EXECROOT, the directory this script started in. NODE_MODULES may be "".
set -euo pipefail

if (($# != 3)); then
  echo "usage: npm_run.sh NODE_MODULES MANIFEST COMMAND" >&2
  exit 2
fi
node_modules=$1 manifest=$2 command=$3

export EXECROOT=$PWD
if [[ -n ${TEST_TMPDIR:-} ]]; then
  work=$(mktemp -d "$TEST_TMPDIR/npm_run.XXXXXX") # Bazel cleans TEST_TMPDIR itself.
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/npm_run.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi

while IFS=$'\t' read -r src rel; do
  [[ -n $src ]] || continue
  mkdir -p "$work/$(dirname "$rel")"
  cp -L "$src" "$work/$rel"
done <"$manifest"
chmod -R u+w "$work"

if [[ -n $node_modules ]]; then
  node_modules=$(readlink -f "$node_modules")
  if [[ -e $work/node_modules ]]; then
    echo "npm_run.sh: the sources already contain node_modules" >&2
    exit 2
  fi
  mkdir "$work/node_modules"
  shopt -s nullglob dotglob
  for entry in "$node_modules"/*; do
    ln -s "$entry" "$work/node_modules/"
  done
  shopt -u nullglob dotglob
fi

# Nothing reads or writes the real home; no colour codes in logs.
export HOME=$work/.home XDG_CACHE_HOME=$work/.home/.cache NO_COLOR=1
mkdir -p "$HOME"

cd "$work"
bash -c "$command"
