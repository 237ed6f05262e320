#!/usr/bin/env bash
# Resolve the Kafka jars from Maven Central into deploy/kafka/lib/ (only when lib/ is missing or
# pom.xml changed since the last fetch; otherwise the jars already there are reused).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

stamp="$KAFKA_LIB/.pom.sha256"
want="$(sha256sum "$KAFKA_HOME/pom.xml" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && compgen -G "$KAFKA_LIB/kafka_2.13-*.jar" >/dev/null; then
    echo "kafka: jars up to date in ${KAFKA_LIB#"$REPO_ROOT"/}"
    exit 0
fi

command -v mvn >/dev/null || { echo "kafka: mvn not found (apt-get install maven)" >&2; exit 1; }
command -v java >/dev/null || { echo "kafka: java not found (a JDK 17+ is needed)" >&2; exit 1; }

rm -rf "$KAFKA_LIB"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# shellcheck disable=SC2086  # FX_MAVEN_ARGS is a list of extra arguments
if ! mvn -B -q -Dstyle.color=never ${FX_MAVEN_ARGS:-} -f "$KAFKA_HOME/pom.xml" package >"$log" 2>&1; then
    cat "$log" >&2
    echo "kafka: mvn failed to resolve the jars" >&2
    exit 1
fi
echo "$want" >"$stamp"
echo "kafka: fetched $(find "$KAFKA_LIB" -name '*.jar' | wc -l) jars into ${KAFKA_LIB#"$REPO_ROOT"/}"
