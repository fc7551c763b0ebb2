#!/usr/bin/env bash
# Builds Kubernetes binaries (kube-apiserver, kubectl, ...) from the Go
# module proxy into .cache/kube/<version>/bin, in a scratch module kept
# apart from the project's go.mod. k8s.io/kubernetes requires its staging
# modules at v0.0.0; each is replaced with its published v0.<minor>.<patch>.
# Cached: a binary that exists is not rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
KUBE_VERSION=${KUBE_VERSION:-v1.33.13}
TARGETS=${TARGETS:-kube-apiserver kubectl}
STAGING=v0.${KUBE_VERSION#v1.}
DIR=$PWD/.cache/kube/$KUBE_VERSION
export PATH=/usr/local/go/bin:$PATH GOFLAGS=-mod=mod
mkdir -p "$DIR/bin" "$DIR/mod"

missing=()
for t in $TARGETS; do [ -x "$DIR/bin/$t" ] || missing+=("$t"); done
[ ${#missing[@]} -eq 0 ] && exit 0

cd "$DIR/mod"
if [ ! -f go.sum ]; then
	echo "kube-build: resolving k8s.io/kubernetes $KUBE_VERSION"
	cat > go.mod <<MOD
module plexus.local/kubebuild

go 1.24.0

godebug default=go1.24

require k8s.io/kubernetes $KUBE_VERSION
MOD
	go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" > kube.json
	kmod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' kube.json)
	{
		echo "replace ("
		grep -E '^[[:space:]]+k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$kmod" | awk -v v="$STAGING" '{print "\t" $1 " => " $1 " " v}'
		echo ")"
	} >> go.mod
	for t in $TARGETS; do go get "k8s.io/kubernetes/cmd/$t@$KUBE_VERSION"; done
fi
minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
LD="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	LD="$LD -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done
for t in "${missing[@]}"; do
	echo "kube-build: building $t $KUBE_VERSION (several minutes the first time)"
	start=$(date +%s)
	go get "k8s.io/kubernetes/cmd/$t@$KUBE_VERSION" >/dev/null 2>&1 || true
	CGO_ENABLED=0 go build -trimpath -ldflags "$LD" -o "$DIR/bin/$t.tmp" "k8s.io/kubernetes/cmd/$t"
	mv "$DIR/bin/$t.tmp" "$DIR/bin/$t"
	echo "kube-build: $t built in $(( $(date +%s) - start ))s"
done
