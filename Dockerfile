# syntax=docker/dockerfile:1
#
# hookgate container image.
#
#   docker build -t hookgate .
#   docker run -d --name hookgate -p 8080:8080 -p 127.0.0.1:9090:9090 \
#     -e HOOKGATE_ADMIN_TOKEN=... -e KRATOS_WEBHOOK_API_KEY=... \
#     -e IDENTUS_WEBHOOK_TOKEN=... -e ABP_WEBHOOK_SECRET=whs_... \
#     -v hookgate-data:/app/data hookgate
#
# The image runs with HOOKGATE_ENV=production: config/default.yaml + config/production.yaml, secrets
# only from the environment (a missing variable or a dev-only value stops the start, naming it).

# ---------------------------------------------------------------------------------------------
# Build stage
# ---------------------------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /build

# 1. Dependencies only: the manifest and lock file with placeholder sources, so that this layer
#    (the slow part) is rebuilt only when Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
# Build settings (SQLite's fdatasync) apply to the dependency layer too.
COPY .cargo ./.cargo
# The manifest names bench targets; placeholder files satisfy it (benches are not built here).
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs \
 && : > src/lib.rs \
 && echo 'fn main() {}' > benches/receive.rs \
 && echo 'fn main() {}' > benches/retention.rs \
 && echo 'fn main() {}' > benches/delivery.rs \
 && cargo build --release --locked \
 && rm -rf src

# 2. The real sources. COPY keeps the files' own modification times, which can be older than the
#    placeholder build above; touching them makes cargo rebuild the hookgate crate itself.
COPY src ./src
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked \
 && cp target/release/hookgate /usr/local/bin/hookgate \
 && /usr/local/bin/hookgate --version

# ---------------------------------------------------------------------------------------------
# Runtime stage
# ---------------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# A fixed, non-root uid/gid so that volume ownership is predictable.
RUN groupadd --gid 10001 hookgate \
 && useradd --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin \
      hookgate

WORKDIR /app
COPY --from=builder /usr/local/bin/hookgate /usr/local/bin/hookgate
COPY config/ /app/config/

# The embedded SQLite store (store.url: sqlite://data/hookgate.db, relative to WORKDIR /app).
RUN mkdir -p /app/data && chown hookgate:hookgate /app/data && chmod 0750 /app/data

# HOOKGATE_ENV=production layers config/production.yaml over config/default.yaml and refuses
# development secrets. The admin listener defaults to 127.0.0.1:9090, which is unreachable from
# outside a container; here it listens on all interfaces. Publish port 9090 only on an internal
# network (the admin API needs the bearer token; /metrics does not).
ENV HOOKGATE_ENV=production \
    HOOKGATE__ADMIN__LISTEN=0.0.0.0:9090

VOLUME ["/app/data"]
USER 10001:10001
EXPOSE 8080 9090

# No curl in a slim image: bash's /dev/tcp sends a bare HTTP/1.0 request to /healthz and checks the
# status line for " 200 ". The port follows HOOKGATE__SERVER__LISTEN when that is set.
# (Docker keeps HEALTHCHECK; podman only with `podman build --format docker`.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "l=${HOOKGATE__SERVER__LISTEN:-0.0.0.0:8080}; exec 3<>/dev/tcp/127.0.0.1/${l##*:} && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && IFS= read -r status <&3 && [[ $status == *' 200 '* ]]"]

ENTRYPOINT ["hookgate"]
CMD ["serve"]
