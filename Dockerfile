# syntax=docker/dockerfile:1
# Multi-stage build of the one `contact-import` binary (roles: run, serve, work, migrate, ...).

FROM rust:1.95-bookworm AS builder
WORKDIR /src
# The crate uses no sqlx query macros (only `migrate!`, which reads migrations/), so the build
# needs no database; SQLX_OFFLINE=true makes any macro added later fail here instead of connecting.
ENV SQLX_OFFLINE=true CARGO_INCREMENTAL=0

# Dependencies first, against stub sources, so this layer is rebuilt only when Cargo.toml or
# Cargo.lock change. Every target the manifest declares (bins, benches, ...) gets a stub, since
# cargo refuses a declared target without its file; the stubs go afterwards.
COPY Cargo.toml Cargo.lock ./
COPY deploy/cargo-stubs.sh /usr/local/bin/
RUN sh /usr/local/bin/cargo-stubs.sh create \
    && cargo build --release --locked \
    && sh /usr/local/bin/cargo-stubs.sh remove

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
