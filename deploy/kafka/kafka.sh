#!/usr/bin/env bash
# Run one of Kafka's tools with the jar classpath, e.g.
#   deploy/kafka/kafka.sh consumer-groups --bootstrap-server 127.0.0.1:9092 --describe --all-groups
#   deploy/kafka/kafka.sh org.apache.kafka.tools.GetOffsetShell --bootstrap-server 127.0.0.1:9092
# The first argument is a short name below or a fully qualified main class.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if (($# == 0)); then
    sed -n '2,5s/^# \{0,1\}//p' "$0"
    echo "short names: topics consumer-groups console-consumer console-producer get-offsets configs"
    echo "             metadata-quorum producer-perf consumer-perf storage"
    exit 2
fi
tool="$1"
shift
case "$tool" in
    topics) main=org.apache.kafka.tools.TopicCommand ;;
    consumer-groups) main=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    console-consumer) main=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    console-producer) main=org.apache.kafka.tools.ConsoleProducer ;;
    get-offsets) main=org.apache.kafka.tools.GetOffsetShell ;;
    configs) main=kafka.admin.ConfigCommand ;;
    metadata-quorum) main=org.apache.kafka.tools.MetadataQuorumCommand ;;
    producer-perf) main=org.apache.kafka.tools.ProducerPerformance ;;
    consumer-perf) main=org.apache.kafka.tools.ConsumerPerformance ;;
    storage) main=kafka.tools.StorageTool ;;
    *) main="$tool" ;;
esac

"$KAFKA_HOME/fetch.sh" >/dev/null
kafka_java "$KAFKA_LOGS/tools.log" -Xmx256m "$main" "$@"
