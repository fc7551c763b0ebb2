# The Plexus image for those who have Docker (or Podman/Buildah):
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t plexus:dev .
#
# It holds what `make image` puts in bin/plexus-image.tar (an index for
# linux/amd64 and linux/arm64, built with go-containerregistry) without a
# Docker engine: the static shim, plexus-replay and daemon in /usr/bin, and links to them where
# Multus thick's manifest looks for its binaries. plexusd's
# init container copies the shim into the host's CNI bin dir
# (plexusd --install-shim), so both must be in the same image.
ARG GO_VERSION=1.26
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN export GOOS=linux GOARCH=${TARGETARCH} && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/plexus-cni/plexus/pkg/buildinfo.Version=${VERSION}" -o /out/plexus ./cmd/thin-plugin && \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/plexus-cni/plexus/pkg/buildinfo.Version=${VERSION}" -o /out/plexus-replay ./cmd/thin-plugin/replay && \
    CGO_ENABLED=0 go build -trimpath -tags grpcnotrace -ldflags "-s -w -X github.com/plexus-cni/plexus/pkg/buildinfo.Version=${VERSION}" -o /out/plexusd ./cmd/thick-daemon && \
    mkdir -p /out/multus && ln -s /usr/bin/plexusd /out/multus/multus-daemon && \
    ln -s /usr/bin/plexusd /out/multus/install_multus && ln -s /usr/bin/plexus /out/multus/multus-shim && \
    ln -s /usr/bin/plexus /out/multus/passthru && ln -s /usr/bin/plexusd /out/install_multus

FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.version=${VERSION} \
      org.opencontainers.image.source=https://github.com/plexus-cni/plexus \
      org.opencontainers.image.title=plexus
COPY --from=build /out/plexus /out/plexus-replay /out/plexusd /usr/bin/
# The entry points Multus thick's manifest calls (docs/migrate-from-multus.md).
COPY --from=build /out/multus/ /usr/src/multus-cni/bin/
# RKE2's and Multus's own thin images keep install_multus at the root.
COPY --from=build /out/install_multus /install_multus
ENTRYPOINT ["/usr/bin/plexusd"]
