#!/usr/bin/env bash
# Builds the Calico CNI plugin (one binary, which is calico-ipam too when
# named so) from the Go module proxy into .cache/primaries/calico-<v>/,
# with Calico's CRDs beside it. Only a pseudo-version of the root module
# github.com/projectcalico/calico is served (release-v3.28, v3.28.5 + one
# Makefile change); its go.mod replaces github.com/projectcalico/api with
# ./api, a nested module the zip leaves out, so the copy built here points
# it at the api pseudo-version the proxy serves (tigera/operator's pin;
# its pkg/apis differ from the in-tree api only by felix fields the CNI
# plugin never reads). Cached: binaries that exist are not rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
V=${CALICO_MODULE_VERSION:-v1.11.0-cni-plugin.0.20250813170300-a0db560f0520}
API=${CALICO_API_VERSION:-v0.0.0-20240708202104-e3f70b269c2c}
OUT=$PWD/.cache/primaries/calico-v3.28.5
[ -x "$OUT/calico" ] && [ -x "$OUT/calico-ipam" ] && [ -f "$OUT/crds.yaml" ] && exit 0
export PATH=/usr/local/go/bin:$PATH GOTOOLCHAIN=local
mkdir -p "$OUT"
echo "calico-build: building the calico CNI plugin (v3.28.5; several minutes the first time)"
start=$(date +%s)
dir=$(go mod download -json "github.com/projectcalico/calico@$V" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
SRC=$OUT/src
rm -rf "$SRC" && cp -r "$dir" "$SRC" && chmod -R u+w "$SRC"
cd "$SRC"
go mod edit -replace "github.com/projectcalico/api=github.com/projectcalico/api@$API"
CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" go build -trimpath -ldflags "-s -w -X main.VERSION=v3.28.5" -o "$OUT/calico.tmp" ./cni-plugin/cmd/calico
cp manifests/crds.yaml "$OUT/crds.yaml"
cp "$OUT/calico.tmp" "$OUT/calico-ipam"
mv "$OUT/calico.tmp" "$OUT/calico"
cd / && rm -rf "$SRC"
echo "calico-build: done in $(( $(date +%s) - start ))s"
