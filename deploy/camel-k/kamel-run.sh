#!/usr/bin/env bash
# Deploys the integration on Camel K (Quarkus runtime) from the repo's own route files.
# Needs: kamel, a cluster with Camel K, the helpers jar published to a Maven repository the operator
# reads (mvn -B deploy), and the secret with the database password:
#   kubectl create secret generic sensor-metrics-db \
#     --from-literal=quarkus.datasource.password='...'
# For a secured Kafka or PostgreSQL (docs/security.md), when they exist, two more secrets:
#   kubectl create secret generic sensor-metrics-kafka --from-literal=KAFKA_SASL_PASSWORD='...'
#   kubectl create secret generic sensor-metrics-tls --from-file=kafka-ca.pem --from-file=db-ca.pem
# and the plain settings as environment variables, for example:
#   deploy/camel-k/kamel-run.sh -e KAFKA_SECURITY_PROTOCOL=SASL_SSL -e KAFKA_SASL_MECHANISM=SCRAM-SHA-512 \
#     -e KAFKA_SASL_USERNAME=sensor-metrics -e KAFKA_SSL_TRUSTSTORE_LOCATION=/etc/sensor-metrics/tls/kafka-ca.pem \
#     -e DB_SSL_MODE=verify-full -e DB_SSL_ROOT_CERT=/etc/sensor-metrics/tls/db-ca.pem
set -euo pipefail
cd "$(dirname "$0")/../.."
version=$(mvn -q help:evaluate -Dexpression=project.version -DforceStdout 2>/dev/null || echo 1.0.0-SNAPSHOT)

secrets=()
if kubectl get secret sensor-metrics-kafka >/dev/null 2>&1; then
  secrets+=(--config secret:sensor-metrics-kafka)
fi
if kubectl get secret sensor-metrics-tls >/dev/null 2>&1; then
  secrets+=(--resource secret:sensor-metrics-tls@/etc/sensor-metrics/tls)
fi

kamel run \
  --name sensor-metrics-consumer \
  routes/beans.camel.yaml \
  routes/kafka-security.camel.yaml \
  routes/ingest/ingest-sensor-metrics.camel.yaml \
  routes/ingest/drop-ignored-sensors.camel.yaml \
  routes/ingest/store-batch.camel.yaml \
  routes/ingest/send-alerts.camel.yaml \
  routes/ingest/watch-consumer-group.camel.yaml \
  routes/storage/prepare-database.camel.yaml \
  routes/storage/maintain-partitions.camel.yaml \
  routes/storage/refresh-rollups.camel.yaml \
  routes/read-api/read-api.camel.yaml \
  --property file:application.properties \
  --property file:deploy/camel-k/camel-k.properties \
  --config secret:sensor-metrics-db \
  "${secrets[@]}" \
  --dependency camel:kafka \
  --dependency camel:sql \
  --dependency camel:jackson \
  --dependency camel:groovy \
  --dependency camel:controlbus \
  --dependency camel:timer \
  --dependency camel:direct \
  --dependency camel:bean \
  --dependency camel:platform-http \
  --dependency camel:rest \
  --dependency camel:micrometer \
  --dependency mvn:io.quarkus:quarkus-micrometer-registry-prometheus \
  --dependency mvn:io.quarkus:quarkus-jdbc-postgresql \
  --dependency mvn:org.apache.camel.quarkus:camel-quarkus-jta \
  --dependency "mvn:org.sensormetrics:sensor-metrics-consumer:${version}" \
  --trait health.enabled=true \
  --trait prometheus.enabled=true \
  "$@"
