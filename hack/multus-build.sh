#!/usr/bin/env bash
# Builds Multus thick v4.3.0 (multus-daemon, multus-shim, install_multus,
# passthru: what its image holds) for the
# switch-from-Multus e2e, test-only, into .cache/multus-<v>/. The proxy
# lists no versions of gopkg.in/k8snetworkplumbingwg/multus-cni.v4, so
# `go install …@v4.3.0` fails; a scratch module that requires it builds
# its commands. The upstream manifest (deployments/) is copied beside.
# Cached: binaries that exist are not rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
V=${MULTUS_VERSION:-v4.3.0}
MOD=gopkg.in/k8snetworkplumbingwg/multus-cni.v4
OUT=$PWD/.cache/multus-$V
[ -x "$OUT/multus-daemon" ] && [ -x "$OUT/multus-shim" ] && [ -x "$OUT/install_multus" ] && [ -x "$OUT/passthru" ] && [ -f "$OUT/multus-daemonset-thick.yml" ] && exit 0
export PATH=/usr/local/go/bin:$PATH GOFLAGS=-mod=mod
mkdir -p "$OUT/mod"
echo "multus-build: building multus-daemon and multus-shim $V (a few minutes the first time)"
start=$(date +%s)
cd "$OUT/mod"
cat > go.mod <<MOD
module plexus.local/multusbuild

go 1.24.0

require $MOD $V
MOD
dir=$(go mod download -json "$MOD@$V" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
# The module's own replace directives do not apply to a dependency: copy them.
sed -n '/^replace/,/^)/p' "$dir/go.mod" >> go.mod
for c in multus-daemon:multus-daemon multus-shim:multus-shim install_multus:install_multus passthru-cni:passthru; do
	pkg=${c%%:*} bin=${c##*:}
	[ -x "$OUT/$bin" ] && continue
	go get "$MOD/cmd/$pkg@$V" >/dev/null 2>&1 || true
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OUT/$bin.tmp" "$MOD/cmd/$pkg"
	mv "$OUT/$bin.tmp" "$OUT/$bin"
done
cp "$dir/deployments/multus-daemonset-thick.yml" "$OUT/multus-daemonset-thick.yml"
echo "multus-build: done in $(( $(date +%s) - start ))s"
