#!/usr/bin/env bash
# Installs the independent peers and checkers the test suite uses. Idempotent: what is there
# in the right version is left alone, so a second run takes seconds.
#
# From Debian: kcat (Kafka client), tshark (SMPP dissector), Net::SMPP (SMPP implementation in
# Perl), promtool from prometheus (checks and unit-tests deploy/prometheus/alerts.yml),
# docker-compose (`docker-compose config` checks docker-compose.yml).
# From the Go module proxy: helm, built with `go install` into $(go env GOPATH)/bin (lint and
# render the chart), and the prometheus-operator's CRDs (ServiceMonitor, PrometheusRule),
# copied to .cache/crds to validate the chart's monitoring objects offline. Go's module and
# build caches live in its usual places, so a fresh clone rebuilds nothing.
# The Kubernetes API schemas come with the kubernetes-validate package (pyproject's dev extra).
# Java 17 and Maven are expected on the machine; the Kafka broker itself is fetched by
# `python -m gateway.localkafka fetch`.
set -euo pipefail
cd "$(dirname "$0")/../.."

HELM_MODULE=helm.sh/helm/v3
HELM_VERSION=v3.22.1
OPERATOR_MODULE=github.com/prometheus-operator/prometheus-operator
OPERATOR_VERSION=v0.85.0

debian_packages() {
  local missing=()
  command -v kcat >/dev/null 2>&1 || missing+=(kcat)
  command -v tshark >/dev/null 2>&1 || missing+=(tshark)
  perl -MNet::SMPP -e1 >/dev/null 2>&1 || missing+=(libnet-smpp-perl)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "installing test peers from Debian: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

helm_binary() {
  local gobin
  gobin="$(go env GOBIN)"
  gobin="${gobin:-$(go env GOPATH)/bin}"
  if go version -m "$gobin/helm" 2>/dev/null | grep -q "mod[[:space:]]*$HELM_MODULE[[:space:]]*$HELM_VERSION"; then
    return 0
  fi
  echo "building helm $HELM_VERSION with go install (first time: a few minutes)"
  go install "$HELM_MODULE/cmd/helm@$HELM_VERSION"
}

operator_crds() {
  local target=.cache/crds stamp=.cache/crds/VERSION dir
  if [ "$(cat "$stamp" 2>/dev/null)" = "$OPERATOR_VERSION" ]; then
    return 0
  fi
  dir="$(go mod download -json "$OPERATOR_MODULE@$OPERATOR_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  mkdir -p "$target"
  for kind in servicemonitors prometheusrules; do
    cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$target/"
  done
  chmod u+w "$target"/*.yaml
  echo "$OPERATOR_VERSION" >"$stamp"
}

debian_packages
if ! command -v go >/dev/null 2>&1; then
  echo "go is missing: helm and the prometheus-operator CRDs are built from the Go module proxy" >&2
  exit 1
fi
helm_binary
operator_crds
