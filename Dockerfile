# Multi-stage build: compile with the Rust image, run on debian-slim as a non-root user.
# Configure through HYGROCAST_* environment variables; with a container, point
# HYGROCAST_DATABASE__URL at a PostgreSQL server (see docker-compose in README).

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
# The build script (git commit for --version) is part of the manifest, so it comes first.
COPY src/build.rs ./src/build.rs
RUN echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
# The build context has no .git: pass the commit in (docker build --build-arg
# HYGROCAST_COMMIT=$(git rev-parse --short=10 HEAD)); "unknown" otherwise.
ARG HYGROCAST_COMMIT=unknown
ENV HYGROCAST_COMMIT=${HYGROCAST_COMMIT}
COPY src ./src
COPY templates ./templates
COPY migrations ./migrations
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin hygrocast

FROM debian:bookworm-slim
# postgresql is optional: it lets the embedded default run inside the container when no
# database.url is given (the cluster then lives in /var/lib/hygrocast).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates postgresql \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/hygrocast --create-home hygrocast
COPY --from=build /src/target/release/hygrocast /usr/local/bin/hygrocast
COPY config.toml /etc/hygrocast/config.toml
USER hygrocast
WORKDIR /var/lib/hygrocast
ENV HYGROCAST_SERVER__BIND=0.0.0.0:8080 \
    HYGROCAST_DATABASE__DATA_DIR=/var/lib/hygrocast/data
EXPOSE 8080
VOLUME ["/var/lib/hygrocast"]
HEALTHCHECK --interval=30s --timeout=3s CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
ENTRYPOINT ["hygrocast", "--config", "/etc/hygrocast/config.toml"]
CMD ["serve"]
