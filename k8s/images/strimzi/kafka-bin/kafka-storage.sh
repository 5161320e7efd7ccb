#!/usr/bin/env bash
# Tally's minimal kafka-storage.sh for the Strimzi Kafka image (see kafka-run-class.sh): Kafka's
# KRaft storage tool. Strimzi's kafka_run.sh formats the broker's volumes with it.
#
#   kafka-storage.sh format -t=CLUSTER_ID -r=METADATA_VERSION -c=server.properties [-g] | info ...
set -euo pipefail

exec "$(dirname "$0")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
