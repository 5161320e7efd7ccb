#!/usr/bin/env bash
# Builds Strimzi's cluster operator (with the topic and user operators and kafka-init, which share
# its image), kafka-agent and tracing-agent from the source tree SRC with Maven, and prints the
# directory holding the result:
#
#   tools/toolchain/enter bash tools/strimzi/build.sh SRC
#
#   operator/bin, operator/lib   the four operators' dist zips, unpacked (what Strimzi's operator
#                                image has in /opt/strimzi)
#   agents/kafka-agent.jar, agents/tracing-agent.jar   for the Kafka broker image's libs/
#   config-models/               the generated kafka-<version>-config-model.json file
#   SHA256SUMS                   of everything above
#
# A cold build takes tens of minutes on 2 cores, so the result is cached once per machine under
# $TALLY_HOME/strimzi/<key>, keyed by this script, overrides.txt, dropped.txt, strimzi_source.py, the source
# tree's digest, the Kafka version, Maven's and the JDK's versions: every checkout shares it. It is built in
# <key>.partial, renamed when complete, and a lock makes concurrent callers wait for one build.
# Maven's downloads stay in $TALLY_HOME/strimzi/m2 across keys; a second build of the same tree
# with `--offline` (BUILD_OFFLINE=1) needs nothing from the network. Runs inside the toolchain root.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${1:?usage: build.sh SRC, the Strimzi source tree}
src=$(cd "$src" && pwd)
TALLY_HOME=${TALLY_HOME:-/var/cache/tally}
# Strimzi builds with JDK 21 (its images run a JRE 21); the root's default JDK is newer.
export JAVA_HOME=${STRIMZI_JAVA_HOME:-/usr/lib/jvm/java-21-openjdk-amd64}
export PATH=$JAVA_HOME/bin:$PATH

log() { printf '\033[1mtools/strimzi:\033[0m %s\n' "$*" >&2; }
die() { printf 'tools/strimzi: %s\n' "$*" >&2; exit 1; }

[[ -x $JAVA_HOME/bin/javac ]] || die "no JDK at $JAVA_HOME (openjdk-21-jdk-headless in tools/toolchain/packages.txt)"
command -v mvn >/dev/null || die "mvn is not on PATH (maven in tools/toolchain/packages.txt)"
tool() { python3 "$here/strimzi_source.py" "$@"; }
# The one Kafka version the operator supports: the broker image's (strimzi_source.py only-kafka).
kafka=$(sed -n 's|.*<kafka.version>\(.*\)</kafka.version>.*|\1|p' "$here/broker/pom.xml")
[[ -n $kafka ]] || die "no <kafka.version> in $here/broker/pom.xml"

tree=$(tool digest "$src")
key=$({
  cat "$here/build.sh" "$here/overrides.txt" "$here/dropped.txt" "$here/strimzi_source.py"
  echo "$tree $kafka"
  mvn --version 2>&1 | head -n1
  "$JAVA_HOME/bin/java" -version 2>&1 | head -n1
} | sha256sum | cut -c1-12)
out=$TALLY_HOME/strimzi/$key
if [[ -e $out/.complete ]]; then
  echo "$out"
  exit 0
fi

mkdir -p "$TALLY_HOME/strimzi"
exec 9>"$TALLY_HOME/strimzi/.lock"
flock 9
if [[ -e $out/.complete ]]; then
  echo "$out"
  exit 0
fi

version=$(sed -n 's/^\([0-9][0-9.]*\).*/\1/p' "$src/release.version")
[[ -n $version ]] || die "no version in $src/release.version"
partial=$out.partial
mkdir -p "$partial"
started=$SECONDS
# An interrupted build resumes from its last finished step (stamps in <key>.partial/.stamps).
step_done() { [[ -e $partial/.stamps/$1 ]]; }
step_mark() { mkdir -p "$partial/.stamps" && touch "$partial/.stamps/$1"; }
log "building Strimzi $version from source with Maven (tens of minutes cold on 2 cores; once per machine)"
if ! step_done source; then
  rm -rf "$partial/src" "$partial/maven.log"
  cp -a "$src" "$partial/src"
  chmod -R u+w "$partial/src"
  tool override "$partial/src/pom.xml" "$here/overrides.txt"
  tool drop "$partial/src" "$here/dropped.txt"
  # No tests run here, so none are compiled either: an override's test-only API difference (the
  # test container 0.115.0 lacks a public class 0.116.0's tests use) cannot stop the build, and
  # two cores are spared compiling them. Test-jars are still packaged, empty, for the modules
  # that declare them.
  rm -rf "$partial/src/"*/src/test
  tool only-kafka "$kafka" "$partial/src/kafka-versions.yaml"
  step_mark source
fi

offline=()
[[ ${BUILD_OFFLINE:-} == 1 ]] && offline=(--offline)
# Heavy builds share the machine: stay out of the way of interactive work. Tests, javadoc,
# sources, checkstyle, coverage and the dependency analysis are for Strimzi's own CI.
# The same tree builds the same bytes: every jar entry carries the tag's commit time (the time
# of every entry of the tag's archive), and maven-jar-plugin is 3.4.2 instead of the 3.1.0 that
# Strimzi's pom names, which predates project.build.outputTimestamp (3.2.0) and stamped the
# build's clock on every entry.
mvn_() {
  (cd "$partial/src" && nice -n 10 mvn --batch-mode --no-transfer-progress "${offline[@]}" \
    -Dmaven.repo.local="$TALLY_HOME/strimzi/m2" \
    -Dproject.build.outputTimestamp=2026-08-18T15:14:14Z -Dmaven.jar.version=3.4.2 \
    -DskipTests -Dmaven.javadoc.skip=true -Dmaven.source.skip=true -Dcheckstyle.skip=true \
    -Djacoco.skip=true -Dspotbugs.skip=true -Dmdep.analyze.skip=true \
    "$@") >>"$partial/maven.log" 2>&1 || die "mvn $* failed; see $partial/maven.log"
}

models=$partial/src/cluster-operator/src/main/resources
if ! step_done maven; then
  # 1. The config model generator and what it needs (config-model, the parent pom), installed in
  # the build's own local repository so that step 2 can run the generator alone.
  log "  [1/3] config-model-generator"
  mvn_ -pl config-model-generator -am -Pgenerate-model install
  # 2. The config model of each supported Kafka version (Strimzi's build-config-models.sh, minus yq).
  rm -f "$models"/kafka-*-config-model.json
  while read -r model_version maven_version; do
    log "  [2/3] config model for Kafka $model_version"
    mvn_ -f config-model-generator/pom.xml -Pgenerate-model -Dkafka-metadata-version="$maven_version" \
      -Dconfig-model-file="$models/kafka-$model_version-config-model.json" compile exec:java
    [[ -s $models/kafka-$model_version-config-model.json ]] || die "no config model for Kafka $model_version"
  done < <(tool kafka-versions "$partial/src/kafka-versions.yaml")
  # 3. The operators and the agents.
  log "  [3/3] cluster-operator, topic-operator, user-operator, kafka-init, kafka-agent, tracing-agent"
  mvn_ -pl cluster-operator,topic-operator,user-operator,kafka-init,kafka-agent,tracing-agent -am package
  step_mark maven
fi

rm -rf "$partial/result"
mkdir -p "$partial/result/operator" "$partial/result/agents" "$partial/result/config-models"
# Strimzi's poms put the dist zips where its image build takes them.
for dist in cluster-operator topic-operator user-operator kafka-init; do
  python3 -m zipfile -e "$partial/src/docker-images/artifacts/binaries/$dist-$version-dist.zip" "$partial/result/operator"
done
# zipfile drops the file modes the zips carry: the launch scripts are the only executables.
chmod 755 "$partial/result/operator/bin/"*.sh
cp "$partial/src/kafka-agent/target/kafka-agent-$version.jar" "$partial/result/agents/kafka-agent.jar"
cp "$partial/src/tracing-agent/target/tracing-agent-$version.jar" "$partial/result/agents/tracing-agent.jar"
cp "$models"/kafka-*-config-model.json "$partial/result/config-models/"
(cd "$partial/result" && find . -type f | LC_ALL=C sort | xargs sha256sum) >"$partial/SHA256SUMS"
mv "$partial/result" "$partial/out"
mv "$partial/maven.log" "$partial/out.maven.log"
# The sources and their build tree are not needed once built.
rm -rf "$partial/src"
echo "$tree" >"$partial/tree.sha256"
touch "$partial/.complete"
rm -rf "$out"
mv "$partial" "$out"
log "Strimzi $version built in $out ($((SECONDS - started)) s)"
echo "$out"
