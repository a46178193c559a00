#!/usr/bin/env bash
# Installs the independent peers the test suite talks to, from Debian's packages:
# kcat (Kafka client), tshark (SMPP dissector), Net::SMPP (SMPP implementation in Perl),
# promtool from prometheus (checks and unit-tests deploy/prometheus/alerts.yml).
# Java 17 and Maven are expected on the machine; the Kafka broker itself is fetched by
# `python -m gateway.localkafka fetch`.
set -euo pipefail

missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
command -v tshark >/dev/null 2>&1 || missing+=(tshark)
perl -MNet::SMPP -e1 >/dev/null 2>&1 || missing+=(libnet-smpp-perl)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
echo "installing test peers from Debian: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
