#!/usr/bin/env bash
# Deploys the integration on Camel K (Quarkus runtime) from the repo's own route files.
# Needs: kamel, a cluster with Camel K, the helpers jar published to a Maven repository the operator
# reads (mvn -B deploy), and the secret with the database password:
#   kubectl create secret generic sensor-metrics-db \
#     --from-literal=quarkus.datasource.password='...'
set -euo pipefail
cd "$(dirname "$0")/../.."
version=$(mvn -q help:evaluate -Dexpression=project.version -DforceStdout 2>/dev/null || echo 1.0.0-SNAPSHOT)

kamel run \
  --name sensor-metrics-consumer \
  routes/prepare-database.camel.yaml \
  routes/ingest-sensor-metrics.camel.yaml \
  routes/store-batch.camel.yaml \
  routes/maintain-partitions.camel.yaml \
  routes/watch-consumer-group.camel.yaml \
  routes/read-api.camel.yaml \
  routes/beans.camel.yaml \
  --property file:application.properties \
  --property file:deploy/camel-k/camel-k.properties \
  --config secret:sensor-metrics-db \
  --dependency camel:kafka \
  --dependency camel:sql \
  --dependency camel:jackson \
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
