# Multi-stage build of casedrop. No Docker engine runs where the tests run:
# cmd/casedrop/compose_test.go checks this file statically, and
# unprivileged_test.go runs the binary as the final stage's user on a data
# directory laid out like its /data.

# The pages' bundle, from package.json's pinned dependencies.
FROM node:20-bookworm AS ui
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ui ./web/ui
RUN npm run build

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
COPY --from=ui /src/web/ui/dist ./web/ui/dist
RUN CGO_ENABLED=0 go build -trimpath -o /out/casedrop ./cmd/casedrop
RUN install -d -m 0700 /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/casedrop /usr/local/bin/casedrop
# /data belongs to the image's user (nonroot, 65532): a new volume mounted
# there takes its owner from the image, and casedrop writes its certificate
# and admin token into it. The image has no /data of its own otherwise, and
# the volume would be root's.
COPY --from=build --chown=65532:65532 /out/data /data
VOLUME /data
# Every command finds the data here, the admin commands of
# `docker compose exec casedrop casedrop ...` too.
ENV CASEDROP_DATA_DIR=/data
USER 65532:65532
EXPOSE 8443 2222
# Distroless has no shell or curl: casedrop asks its own /readyz, trusting
# the certificate in /data (or, before there is one, loopback as it is).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/casedrop", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/casedrop"]
CMD ["serve"]
