# Airlock gateway image: `docker build -t airlock .` then `docker run -p 8080:8080 airlock serve`.
# Build stage: the `airlock` binary (release, ring-based TLS, SQLite bundled; no OpenSSL needed).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p airlock \
    && cp target/release/airlock /usr/local/bin/airlock

# Runtime stage: a slim Debian with just the binary and the shipped policies.
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /app airlock \
    && mkdir -p /app /data \
    && chown airlock /data
COPY --from=build /usr/local/bin/airlock /usr/local/bin/airlock
COPY policies /app/policies
WORKDIR /app
USER airlock
# Defaults for a container; every key can be overridden with AIRLOCK_<SECTION>__<KEY>.
ENV AIRLOCK_SERVER__LISTEN=0.0.0.0:8080 \
    AIRLOCK_STORE__URL=sqlite:///data/airlock.db
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["airlock"]
CMD ["serve"]
