#!/usr/bin/env bash
# Tally's minimal kafka-server-start.sh for the Strimzi Kafka image (see kafka-run-class.sh): runs
# the broker with the given properties file, with Kafka's default heap unless KAFKA_HEAP_OPTS is
# set. Strimzi's kafka_run.sh starts the broker through it.
#
#   kafka-server-start.sh server.properties [--override key=value ...]
set -euo pipefail

if (($# < 1)); then
  echo "usage: $(basename "$0") server.properties [--override key=value ...]" >&2
  exit 1
fi
export KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}
exec "$(dirname "$0")/kafka-run-class.sh" kafka.Kafka "$@"
