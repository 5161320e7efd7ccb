#!/usr/bin/env bash
# oci_reproducibility_test's body: reproducibility_test.sh OCITOOL STEPS.
# Each line of STEPS is "layer SPEC TAR" or "image SPEC LAYOUT DIGEST", runfiles paths, bases
# first. The specs name inputs under r/ (the runfiles root) and rebuilt outputs under out/, so
# every layer and image is made again here, from the same inputs, and compared with Bazel's.
set -euo pipefail

tool=$1
steps=$PWD/$2
work=$TEST_TMPDIR/rebuild
rm -rf "$work" && mkdir -p "$work"
ln -s "$PWD" "$work/r"
cd "$work"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# manifest_digest prints the digest of the one manifest an OCI layout's index.json lists.
manifest_digest() {
  python3 -c 'import json, sys
m = json.load(open(sys.argv[1]))["manifests"]
assert len(m) == 1, m
print(m[0]["digest"])' "$1/index.json"
}

checked=0
while read -r kind spec out digest; do
  case $kind in
  layer)
    mkdir -p "out/$(dirname "$out")"
    "r/$tool" layer --spec "r/$spec" --out "out/$out"
    cmp -s "out/$out" "r/$out" || fail "layer $out rebuilt from its inputs differs from Bazel's"
    ;;
  image)
    built=$(cat "r/$digest")
    [[ $built =~ ^sha256:[0-9a-f]{64}$ ]] || fail "$digest holds '$built', not sha256:<hex>"
    [[ $(manifest_digest "r/$out") == "$built" ]] || fail "$digest says $built, $out/index.json says otherwise"
    for round in 1 2; do
      mkdir -p "out$round/$(dirname "$out")"
      "r/$tool" image --spec "r/$spec" --out "out/$out" --digest "out$round/$digest"
      again=$(cat "out$round/$digest")
      [[ $again == "$built" ]] || fail "$out rebuilt (round $round) is $again, Bazel built $built"
      [[ $(manifest_digest "out/$out") == "$built" ]] || fail "rebuilt $out/index.json does not list $built"
    done
    echo "$out: $built (Bazel's build and two rebuilds)"
    checked=$((checked + 1))
    ;;
  *) fail "bad step: $kind" ;;
  esac
done <"$steps"
((checked > 0)) || fail "no image checked"
