#!/usr/bin/env bash
# Builds Tally's toolchain root: a Debian forky tree (made with debootstrap) holding Bazel 7.7.1,
# Debian's Bazel modules, Go, Rust with the wasm32 std, WasmEdge, Node, Python, Redis and a JDK,
# plus rules_go and gazelle staged from the Go module proxy and the bazelrc that wires it all
# offline. Sourced by tools/bazel; see tools/bazel.md for the why of each step.
#
# Every step is idempotent and stamped, so an interrupted run resumes where it stopped. The root
# is built in "<key>.partial" and renamed to "<key>" only when complete.

toolchain_die() {
  printf 'tools/bazel: %s\n' "$*" >&2
  exit 1
}

toolchain_log() {
  printf '\033[1mtools/bazel:\033[0m %s\n' "$*" >&2
}

# root_key prints a short hash of what decides the root's packages: rebuilding a root takes minutes.
root_key() {
  local dir=$1
  { cat "$dir/packages.txt"; grep '^DEBIAN_SUITE=' "$dir/versions.env"; } | sha256sum | cut -c1-12
}

# stage_key prints a short hash of what is staged into a root (Go modules, stubs, the bazelrc):
# restaging takes seconds, so a change here refreshes the existing root in place.
stage_key() {
  local dir=$1
  cat "$dir/versions.env" "$dir/provision.sh" \
    $(find "$dir/stubs" "$dir/templates" -type f | LC_ALL=C sort) |
    sha256sum | cut -c1-12
}

toolchain_check_host() {
  [[ $(id -u) == 0 ]] || toolchain_die "must run as root: the toolchain root is made with debootstrap and entered with bubblewrap (try: sudo tools/bazel ...)"
  [[ -r /etc/os-release ]] && grep -q '^ID=debian' /etc/os-release ||
    toolchain_die "this wrapper provisions its toolchain with Debian's tools and needs a Debian host (found: $(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-unknown}"))"
}

# host_mirror prints the Debian archive URL the host's own apt uses, so nothing names a mirror.
host_mirror() {
  local uri
  uri=$(grep -hE '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '{print $2}' | grep -v -- '-security' | grep '/debian/\?$' | head -n1 || true)
  if [[ -z $uri ]]; then
    uri=$(grep -hE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '{for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' | grep -v -- '-security' | head -n1 || true)
  fi
  printf '%s' "${uri%/}"
}

# host_goproxy prints the Go module proxy setting of the host (go env, then the environment).
host_goproxy() {
  if command -v go >/dev/null 2>&1; then
    go env GOPROXY
  else
    printf '%s' "${GOPROXY:-}"
  fi
}

host_npm_registry() {
  if command -v npm >/dev/null 2>&1; then
    npm config get registry 2>/dev/null || true
  fi
}

step_done() { [[ -e $partial/.stamps/$1 ]]; }
step_mark() { mkdir -p "$partial/.stamps" && touch "$partial/.stamps/$1"; }

in_root() {
  bwrap --bind "$partial/root" / --dev-bind /dev /dev --bind /proc /proc --bind /sys /sys \
    --ro-bind /etc/resolv.conf /etc/resolv.conf --clearenv --setenv PATH /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --setenv HOME /root --setenv LANG C.UTF-8 --setenv DEBIAN_FRONTEND noninteractive "$@"
}

provision_host_tools() {
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v bwrap >/dev/null || missing+=(bubblewrap)
  ((${#missing[@]} == 0)) && return
  toolchain_log "installing ${missing[*]} on the host"
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null ||
    toolchain_die "could not install ${missing[*]} with apt-get"
}

provision_debootstrap() {
  step_done debootstrap && return
  local mirror suite_script=/usr/share/debootstrap/scripts/sid
  mirror=$(host_mirror)
  # bookworm's debootstrap has no forky script; sid's works for every testing suite.
  [[ -e $suite_script ]] || toolchain_die "debootstrap has no $suite_script"
  toolchain_log "[1/5] debootstrap $DEBIAN_SUITE (minbase) into $partial/root"
  rm -rf "$partial/root"
  debootstrap --variant=minbase "$DEBIAN_SUITE" "$partial/root" ${mirror:+"$mirror"} "$suite_script" \
    >"$partial/debootstrap.log" 2>&1 || toolchain_die "debootstrap failed; see $partial/debootstrap.log"
  step_mark debootstrap
}

provision_packages() {
  step_done packages && return
  local root=$partial/root packages
  # Mirrors may serve an InRelease past its Valid-Until date.
  echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99tally-no-valid-until"
  echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/99tally-no-recommends"
  # The machine may trust an extra CA for outbound TLS (Go, npm, cargo and Maven need it too).
  mkdir -p "$root/usr/local/share/ca-certificates"
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  fi
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  packages=$(grep -v '^#' "$toolchain_dir/packages.txt" | grep -v '^[[:space:]]*$' | tr '\n' ' ')
  toolchain_log "[2/5] apt-get install in the root ($(wc -w <<<"$packages") packages and their dependencies; a few minutes)"
  in_root apt-get update -q >"$partial/apt.log" 2>&1 || toolchain_die "apt-get update failed; see $partial/apt.log"
  # shellcheck disable=SC2086
  in_root apt-get install -y -q $packages >>"$partial/apt.log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    printf '\r  %s ' "$(grep -cE '^(Get|Setting up)' "$partial/apt.log") steps" >&2
  done
  printf '\n' >&2
  wait "$pid" || toolchain_die "apt-get install failed; see $partial/apt.log"
  in_root update-ca-certificates >/dev/null 2>&1 || toolchain_die "update-ca-certificates failed in the root"
  in_root bazel --version >/dev/null 2>&1 || toolchain_die "bazel does not run in the root"
  step_mark packages
}

# stage_go_module downloads a Go module through the Go module proxy into the root and prints its dir.
stage_go_module() {
  local module=$1 version=$2 dest=$3
  local dir
  dir=$(in_root env GOPROXY="$goproxy" GOMODCACHE=/opt/tally/gomodcache GOFLAGS=-modcacherw GOTOOLCHAIN=local \
    go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -n $dir ]] || toolchain_die "go mod download $module@$version failed"
  rm -rf "$partial/root$dest"
  mkdir -p "$(dirname "$partial/root$dest")"
  cp -r "$partial/root$dir" "$partial/root$dest"
  chmod -R u+w "$partial/root$dest"
  # Module zips drop file modes; scripts must be executable again.
  grep -rlI --null '^#!' "$partial/root$dest" | xargs -0 -r chmod +x  || true
}

provision_modules() {
  step_done modules && return
  toolchain_log "[3/5] staging rules_go $RULES_GO_VERSION and gazelle $GAZELLE_VERSION from the Go module proxy"
  stage_go_module github.com/bazelbuild/rules_go "$RULES_GO_VERSION" /opt/tally/modules/rules_go
  stage_go_module github.com/bazelbuild/bazel-gazelle "$GAZELLE_VERSION" /opt/tally/modules/gazelle
  # gazelle's go.work names ./v2, which module zips drop; fetch it at the version gazelle requires.
  local gazelle=$partial/root/opt/tally/modules/gazelle v2_version
  v2_version=$(awk '$1 == "github.com/bazel-contrib/bazel-gazelle/v2" {print $2; exit}' "$gazelle/go.mod")
  if [[ -n $v2_version ]]; then
    stage_go_module github.com/bazel-contrib/bazel-gazelle/v2 "$v2_version" /opt/tally/modules/gazelle-v2
    rm -rf "$gazelle/v2"
    mv "$partial/root/opt/tally/modules/gazelle-v2" "$gazelle/v2"
    cp "$gazelle/go.sum" "$gazelle/v2/go.sum"
  fi
  # Modules the dependency graph names but nothing used here loads.
  cp -r "$toolchain_dir/stubs/." "$partial/root/opt/tally/modules/"
  # rules_rust's process_wrapper builds the tinyjson crate; Debian ships its source.
  local tinyjson
  tinyjson=$(cd "$partial/root" && ls -d usr/share/cargo/registry/tinyjson-* | head -n1)
  [[ -n $tinyjson ]] || toolchain_die "librust-tinyjson-dev is missing from the root"
  rm -rf "$partial/root/opt/tally/tinyjson"
  cp -r "$partial/root/$tinyjson" "$partial/root/opt/tally/tinyjson"
  cp "$partial/root/usr/share/bazel/rules/rust/util/process_wrapper/BUILD.tinyjson.bazel" \
    "$partial/root/opt/tally/tinyjson/BUILD.bazel"
  : >"$partial/root/opt/tally/tinyjson/WORKSPACE"
  # An empty registry: any module not overridden fails at once instead of reaching for the BCR.
  mkdir -p "$partial/root/opt/tally/registry"
  echo '{}' >"$partial/root/opt/tally/registry/bazel_registry.json"
  step_mark modules
}

provision_bazelrc() {
  step_done bazelrc && return
  toolchain_log "[4/5] writing the toolchain bazelrc"
  local root=$partial/root npm_registry
  npm_registry=$(host_npm_registry)
  mkdir -p "$root/etc/tally"
  {
    sed -e "s|@OUTPUT_USER_ROOT@|$TALLY_HOME/bazel|g" \
      -e "s|@REPOSITORY_CACHE@|$TALLY_HOME/repository-cache|g" \
      "$toolchain_dir/templates/toolchain.bazelrc"
    # Registries come from this machine's own configuration, never from the checkout.
    [[ -n $goproxy ]] && printf 'common --repo_env=GOPROXY=%s\n' "$goproxy"
    [[ -n $npm_registry ]] && printf 'common --repo_env=npm_config_registry=%s\n' "$npm_registry"
    # A Bazel server started in another root, or before a restage, would go on running the old
    # tools; a startup option naming this one makes the client restart it (same output base).
    printf 'startup --host_jvm_args=-Dtally.toolchain=%s-%s\n' "$key" "$staged"
  } >"$root/etc/tally/toolchain.bazelrc"
  {
    [[ -n $goproxy ]] && printf 'GOPROXY=%s\n' "$goproxy"
    [[ -n $npm_registry ]] && printf 'npm_config_registry=%s\n' "$npm_registry"
    printf 'TALLY_HOME=%s\n' "$TALLY_HOME"
  } >"$root/etc/tally/env"
  step_mark bazelrc
}

# toolchain_ensure makes sure the root for the current keys exists and sets TOOLCHAIN_ROOT.
toolchain_ensure() {
  toolchain_dir=$1
  TALLY_HOME=${TALLY_HOME:-/var/cache/tally}
  # shellcheck source=versions.env
  source "$toolchain_dir/versions.env"
  key=$(root_key "$toolchain_dir")
  staged=$(stage_key "$toolchain_dir")
  TOOLCHAIN_ROOT=$TALLY_HOME/toolchain/$key/root
  # Entering the root needs root as much as building it does.
  toolchain_check_host
  toolchain_current && return
  mkdir -p "$TALLY_HOME/toolchain"
  exec 9>"$TALLY_HOME/toolchain/.lock"
  flock 9
  if ! toolchain_current; then
    local started=$SECONDS
    goproxy=$(host_goproxy)
    if [[ -e $TALLY_HOME/toolchain/$key/.complete ]]; then
      toolchain_log "restaging toolchain $key (modules, stubs or bazelrc changed)"
      partial=$TALLY_HOME/toolchain/$key
      rm -f "$partial/.stamps/modules" "$partial/.stamps/bazelrc"
    else
      partial=$TALLY_HOME/toolchain/$key.partial
      toolchain_log "provisioning toolchain $key in $TALLY_HOME (first run only)"
      mkdir -p "$partial"
      provision_host_tools
      provision_debootstrap
      provision_packages
    fi
    provision_modules
    provision_bazelrc
    echo "$staged" >"$partial/root/etc/tally/stage-key"
    if [[ $partial == *.partial ]]; then
      touch "$partial/.complete"
      mv "$partial" "$TALLY_HOME/toolchain/$key"
    fi
    toolchain_log "[5/5] toolchain $key ready in $((SECONDS - started)) s"
    local other
    for other in "$TALLY_HOME"/toolchain/*/; do
      [[ $other == "$TALLY_HOME/toolchain/$key/" ]] && continue
      toolchain_log "an older toolchain is kept at ${other%/}; remove it once no checkout uses it"
    done
  fi
  flock -u 9
}

toolchain_current() {
  [[ -e $TALLY_HOME/toolchain/$key/.complete &&
    $(cat "$TOOLCHAIN_ROOT/etc/tally/stage-key" 2>/dev/null) == "$staged" ]]
}
