# pxe-pilot container image: a static binary on an empty (scratch) base.
#
#   docker build --build-arg VERSION=1.2.3 -t pxe-pilot .
#   docker run --rm -p 8080:8080 -v "$PWD/examples/config:/config:ro" pxe-pilot
#
# The config directory (defaults.toml, hosts/*.toml) is not baked into the
# image: mount it read-only at /config. It must be readable by uid 65534.

FROM golang:1.26-bookworm AS build
WORKDIR /src

# Module downloads get their own layer, reused until go.mod/go.sum change.
COPY go.mod go.sum ./
RUN go mod download

COPY . .
ARG VERSION=dev
# CGO off: the scratch stage has no libc or dynamic loader.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/pxe-pilot .

FROM scratch
COPY --from=build /out/pxe-pilot /pxe-pilot
# Unprivileged nobody:nogroup; the service needs no root and writes nothing.
USER 65534:65534
ENV CONFIG_DIR=/config
EXPOSE 8080
ENTRYPOINT ["/pxe-pilot"]
CMD ["serve"]
