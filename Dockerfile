# syntax=docker/dockerfile:1
# The server as a static binary on distroless (no shell, no curl): the image
# runs `server healthcheck` for its HEALTHCHECK. docker-compose.yml runs two
# of these behind nginx; deploy/topology.sh runs the same binary, built the
# same way, on loopback.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# CGO_ENABLED=0: pure Go all the way down (pgx, modernc SQLite), so the
# binary needs no libc; -trimpath keeps build paths out of it.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/server ./server

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/server /server
USER nonroot
ENV APP_ENV=production APP_ADDR=:8080
# /metrics is never on APP_ADDR in production; its default, 127.0.0.1:9090,
# is unreachable from outside the container: set APP_METRICS_ADDR=:9090 (as
# docker-compose.yml does) for a scraper on the container network.
EXPOSE 8080
# /readyz: the database and Redis answer and the instance is not draining.
# Without -url, `server healthcheck` asks the port in APP_ADDR, so the check
# follows the server when APP_ADDR is changed.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["/server", "healthcheck"]
ENTRYPOINT ["/server"]
