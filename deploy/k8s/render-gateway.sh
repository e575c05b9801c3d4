#!/bin/sh
# Renders Envoy's configuration for Kubernetes and copies the descriptor set beside it, into
# base/gateway/ (kustomize reads files only from below its kustomization). Run it from anywhere
# after changing gateway/envoy_config.py or the protos (`make proto`), and commit the result.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
python=${PYTHON:-.venv/bin/python}
"$python" -m gateway.envoy_config deploy/k8s/base/gateway/envoy.json \
    --listen-host 0.0.0.0 --port 8080 --admin-port 9901 --stats-port 9902 \
    --descriptor /etc/envoy/descriptor.pb --docs /etc/envoy-docs \
    --auth auth:50051 --catalog catalog:50052 --sync sync:50053
cp gateway/descriptor.pb deploy/k8s/base/gateway/descriptor.pb
# The API's documents (/openapi.json, /docs): a ConfigMap of their own, within its 1 MiB.
rm -rf deploy/k8s/base/gateway-docs && cp -r gateway/docs deploy/k8s/base/gateway-docs
