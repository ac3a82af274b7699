# Container image for storagebot serve.
#
# Build:  docker build -t storagebot .
# Run:    docker run -p 3978:3978 -v storagebot-data:/var/lib/storagebot \
#           -e MicrosoftAppType=SingleTenant -e MicrosoftAppId=... \
#           -e MicrosoftAppPassword=... -e MicrosoftAppTenantId=... storagebot
# Check:  docker run --rm ... storagebot serve --check
#
# Configuration comes only from the environment (the README lists every
# setting). The SQLite store lives on the /var/lib/storagebot volume; set
# DATABASE_URL to use PostgreSQL instead.

# Build stage: a static binary, so the runtime image needs no C library.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/storagebot ./cmd/storagebot
# The data folder must belong to the runtime user before it becomes a
# volume, because a new named volume copies the image folder's owner.
RUN mkdir -p /out/data && chown 65532:65532 /out/data

# Runtime stage: distroless static, which has CA certificates and time zone
# data and runs as the unprivileged user 65532 ("nonroot").
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/storagebot /usr/local/bin/storagebot
COPY --from=build --chown=65532:65532 /out/data /var/lib/storagebot
VOLUME /var/lib/storagebot
ENV STORAGEBOT_ADDR=:3978 \
    STORAGEBOT_DB_PATH=/var/lib/storagebot/storagebot.db \
    STORAGEBOT_LOG_FORMAT=json
EXPOSE 3978
USER nonroot:nonroot
# The image has no shell or curl, so the binary checks its own /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/storagebot", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/storagebot"]
CMD ["serve"]
