#!/bin/sh
# The tool the apache/kafka image has at this path (compose's healthcheck calls it).
exec java -Xmx64m -XX:TieredStopAtLevel=1 -Xshare:auto -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.xml \
    -Dlog4j2.level=WARN -cp '/opt/kafka/libs/*' org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
