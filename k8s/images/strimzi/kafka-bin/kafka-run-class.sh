#!/usr/bin/env bash
# Tally's minimal kafka-run-class.sh for the Strimzi Kafka image: runs a Java class with every jar
# of libs/ on the class path and the KAFKA_* options Strimzi's kafka_run.sh sets. Apache Kafka's
# own bin/ scripts come only in its release archive, which is not on Maven Central, so the image
# has these instead (k8s/images/strimzi/README.md). Not supported: -daemon, -name, -loggc, and
# the per-tool defaults of Kafka's script (log files, GC log files).
#
#   kafka-run-class.sh CLASS [ARGS...]
set -euo pipefail

if (($# < 1)) || [[ $1 == -* ]]; then
  echo "usage: $(basename "$0") CLASS [ARGS...] (this image's kafka-run-class.sh takes no options)" >&2
  exit 1
fi

base=$(cd "$(dirname "$0")/.." && pwd)
classpath="$base/libs/*${CLASSPATH:+:$CLASSPATH}"

# Kafka's defaults where the caller sets nothing. KAFKA_GC_LOG_OPTS and KAFKA_JMX_OPTS are Strimzi's
# (set_kafka_gc_options.sh, set_kafka_jmx_options.sh); Kafka's own GC log file is never written.
heap=${KAFKA_HEAP_OPTS:--Xmx256M}
performance=${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true}
java=${JAVA_HOME:+$JAVA_HOME/bin/}java

# The options are word-split on purpose: each variable holds several JVM flags.
# shellcheck disable=SC2086
exec "$java" $heap $performance ${KAFKA_GC_LOG_OPTS:-} ${KAFKA_JMX_OPTS:-} ${KAFKA_LOG4J_OPTS:-} \
  -cp "$classpath" ${KAFKA_OPTS:-} "$@"
