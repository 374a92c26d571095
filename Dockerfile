# pxe-pilot container image: a static binary on an empty (scratch) base.
#
#   docker build --build-arg VERSION=1.2.3 -t pxe-pilot .
#   docker run -d -p 8080:8080 -v "$PWD/examples/config:/config:ro" pxe-pilot
#
# The config dir (defaults.toml, profiles/, hosts/) is not baked into the
# image: mount it read-only at /config. It must be readable by uid 65534.
#
# HTTPS: make a certificate owned by that user, then mount it and say so:
#
#   mkdir tls && sudo chown 65534:65534 tls
#   docker run --rm -u 65534 -v "$PWD/tls:/tls" pxe-pilot cert --out /tls --host 10.0.0.2
#   docker run -d -p 8443:8443 -v "$PWD/config:/config:ro" -v "$PWD/tls:/tls:ro" \
#       -e PXE_PILOT_TLS_CERT=/tls/pxe-pilot.crt -e PXE_PILOT_TLS_KEY=/tls/pxe-pilot.key pxe-pilot
#
# Install tracking: -v pxe-pilot-state:/state -e PXE_PILOT_STATE_DIR=/state.
# The image's /state is owned by uid 65534, mode 0700, and Docker gives a new
# named volume mounted there that ownership, so the server can write it. (A
# bind mount keeps the host dir's owner: chown it to 65534:65534 first.)

FROM golang:1.26-bookworm AS build
WORKDIR /src

# Module downloads get their own layer, reused until go.mod/go.sum change.
COPY go.mod go.sum ./
RUN go mod download

COPY . .
ARG VERSION=dev
# CGO off: the scratch stage has no libc or dynamic loader.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/pxe-pilot .
# scratch has no mkdir: the state dir is made here, 0700, and copied in
# below as an entry of rootfs/, owned by the user the image runs as.
RUN mkdir -p /out/rootfs && mkdir -m 0700 /out/rootfs/state && chown 65534:65534 /out/rootfs/state

FROM scratch
COPY --from=build /out/pxe-pilot /pxe-pilot
COPY --from=build --chown=65534:65534 /out/rootfs/ /
# Unprivileged nobody:nogroup; the service needs no root, and writes only
# to its state dir when tracking is on.
USER 65534:65534
ENV CONFIG_DIR=/config
# 8080 for HTTP, 8443 when PXE_PILOT_TLS_CERT and PXE_PILOT_TLS_KEY are set.
EXPOSE 8080 8443
# scratch has no curl: the binary asks its own /health, on the port and
# with the certificate the environment gives it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/pxe-pilot", "healthcheck"]
ENTRYPOINT ["/pxe-pilot"]
CMD ["serve"]
