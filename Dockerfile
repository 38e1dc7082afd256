# Multi-stage build of casedrop. Not exercised by the tests (no Docker engine
# runs where they run); kept minimal and conventional.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/casedrop ./cmd/casedrop

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/casedrop /usr/local/bin/casedrop
VOLUME /data
EXPOSE 8443 2222
ENTRYPOINT ["/usr/local/bin/casedrop"]
CMD ["serve", "--data-dir", "/data"]
