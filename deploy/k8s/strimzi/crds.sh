#!/usr/bin/env bash
# The Strimzi CRDs (Kafka, KafkaNodePool, KafkaTopic) that kafka-cluster.yaml is validated
# against, generated the way a Strimzi release generates them (its crd-generator over its API
# classes, from Maven Central; see pom.xml):
#   crds.sh --fetch     only resolve the jars into lib/ (install-deps.sh does this)
#   crds.sh OUTDIR      write 040-Crd-kafka.yaml, 043-Crd-kafkatopic.yaml, 045-Crd-kafkanodepool.yaml
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lib="$here/lib"

stamp="$lib/.pom.sha256"
want="$(sha256sum "$here/pom.xml" | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    command -v mvn >/dev/null || { echo "strimzi: mvn not found (apt-get install maven)" >&2; exit 1; }
    rm -rf "$lib"
    log="$(mktemp)"
    # shellcheck disable=SC2086  # FX_MAVEN_ARGS is a list of extra arguments
    if ! mvn -B -q -Dstyle.color=never ${FX_MAVEN_ARGS:-} -f "$here/pom.xml" package >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "strimzi: mvn failed to resolve the jars" >&2
        exit 1
    fi
    rm -f "$log"
    echo "$want" >"$stamp"
    echo "strimzi: fetched $(find "$lib" -name '*.jar' | wc -l) jars into deploy/k8s/strimzi/lib"
fi
[[ "${1:-}" == "--fetch" ]] && exit 0
out="${1:?usage: crds.sh --fetch | crds.sh OUTDIR}"
mkdir -p "$out"
# The arguments of Strimzi's own build (api/pom.xml), for the three kinds used here.
java -cp "$lib/*" io.strimzi.crdgenerator.CrdGenerator \
    --label app:strimzi --label strimzi.io/crd-install:true --target-kube 1.16+ \
    --crd-api-version v1 --api-versions v1beta2 --storage-version v1beta2 --yaml \
    "io.strimzi.api.kafka.model.kafka.Kafka=$out/040-Crd-kafka.yaml" \
    "io.strimzi.api.kafka.model.topic.KafkaTopic=$out/043-Crd-kafkatopic.yaml" \
    "io.strimzi.api.kafka.model.nodepool.KafkaNodePool=$out/045-Crd-kafkanodepool.yaml" \
    2> >(grep -v '^SLF4J' >&2)
