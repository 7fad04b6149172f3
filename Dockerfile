# syntax=docker/dockerfile:1
# Multi-stage build of the one `contact-import` binary (roles: run, serve, work, migrate, ...).

FROM rust:1.95-bookworm AS builder
WORKDIR /src
# sqlx's query macros read the committed .sqlx/ data instead of connecting to a database.
ENV SQLX_OFFLINE=true CARGO_INCREMENTAL=0

# Dependencies first, against stub sources, so this layer is rebuilt only when Cargo.toml or
# Cargo.lock change. Every target path the manifest names gets a stub; all stubs go afterwards.
COPY Cargo.toml Cargo.lock ./
RUN set -eu; \
    for f in src/main.rs $(sed -n 's/^[[:space:]]*path[[:space:]]*=[[:space:]]*"\(.*\.rs\)".*/\1/p' Cargo.toml); do \
        if [ ! -e "$f" ]; then mkdir -p "$(dirname "$f")"; echo 'fn main() {}' > "$f"; echo "$f" >> /tmp/stubs; fi; \
    done; \
    cargo build --release --locked; \
    xargs rm -f < /tmp/stubs

COPY . .
# COPY keeps the sources' old mtimes: touch them so cargo rebuilds the crate over the stub build.
RUN find src -name '*.rs' -exec touch {} + \
    && cargo build --release --locked \
    && install -m 0755 target/release/contact-import /usr/local/bin/contact-import

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 contact-import \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin contact-import
COPY --from=builder /usr/local/bin/contact-import /usr/local/bin/contact-import
# Numeric, so that runtimes enforcing "run as non-root" can check it.
USER 10001:10001
# Inside a container the API must listen on all interfaces, not the loopback default.
ENV LISTEN_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["contact-import"]
CMD ["run"]
