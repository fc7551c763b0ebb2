#!/usr/bin/env bash
# Builds flanneld (github.com/flannel-io/flannel) and its init container's
# install-conf from the Go module proxy into .cache/primaries/flannel-<v>/.
# `go install flannel@v` cannot work here: main.go blank-imports the
# tencentvpc backend, whose SDK zip the proxy refuses (403), and the udp
# backend, which needs cgo on amd64. Both are cut from a writable copy of
# the module; the vxlan backend (the one kube-flannel.yml uses) stays.
# Cached: binaries that exist are not rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
V=${FLANNEL_VERSION:-v0.28.10}
OUT=$PWD/.cache/primaries/flannel-$V
[ -x "$OUT/flanneld" ] && [ -x "$OUT/install-conf" ] && exit 0
export PATH=/usr/local/go/bin:$PATH
mkdir -p "$OUT"
echo "flannel-build: building flanneld $V (a few minutes the first time)"
start=$(date +%s)
dir=$(go mod download -json "github.com/flannel-io/flannel@$V" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
SRC=$OUT/src
rm -rf "$SRC" && cp -r "$dir" "$SRC" && chmod -R u+w "$SRC"
sed -i -e '\#_ "github.com/flannel-io/flannel/pkg/backend/tencentvpc"#d' \
       -e '\#_ "github.com/flannel-io/flannel/pkg/backend/udp"#d' "$SRC/main.go"
cd "$SRC"
CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$V" -o "$OUT/flanneld.tmp" .
CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags "-s -w" -o "$OUT/install-conf" ./cmd/install_conf
mv "$OUT/flanneld.tmp" "$OUT/flanneld"
cd / && rm -rf "$SRC"
echo "flannel-build: done in $(( $(date +%s) - start ))s"
