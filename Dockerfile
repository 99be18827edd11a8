# privmsg-server with its built web client, as one small image.
#   docker build -t privmsg .        (docker-compose.yml builds it for node1 and node2)
# Plain Dockerfile syntax (no BuildKit cache mounts) so that docker-compose 1.x builds it too.

# --- the server ---------------------------------------------------------------------------
FROM rust:1.95-bookworm AS server
WORKDIR /src
# Dependencies first, against stub sources: this layer is rebuilt only when the manifests
# change, not on every source edit. Cargo reads the manifest only if every target it declares
# (`path = ...`: the lib, each bin, the API tests) exists, so each gets an empty stub.
# The workspace's other members (tools) need only their manifest and a stub to resolve.
COPY Cargo.toml Cargo.lock ./
COPY tools/loadgen/Cargo.toml tools/loadgen/Cargo.toml
COPY tools/floor/Cargo.toml tools/floor/Cargo.toml
RUN for target in $(sed -n 's/^path *= *"\(.*\)"/\1/p' Cargo.toml) tools/loadgen/src/main.rs \
      tools/floor/src/main.rs; do \
      mkdir -p "$(dirname "$target")" && echo '#[allow(dead_code)] fn main() {}' > "$target"; \
    done \
 && cargo build --release --locked --bin privmsg-server \
 && rm -rf src
COPY src src
COPY redis-scripts redis-scripts
# Newer mtimes than the stubs' build, so cargo rebuilds the crate itself.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin privmsg-server

# --- the web client -----------------------------------------------------------------------
FROM node:22-bookworm-slim AS client
WORKDIR /client
COPY client/package.json client/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY client ./
RUN npm run build

# --- runtime ------------------------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates and libssl3: for rediss:// (Redis over TLS, through native-tls).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin privmsg
WORKDIR /app
COPY --from=server /src/target/release/privmsg-server /usr/local/bin/privmsg-server
COPY --from=client /client/dist /app/client/dist
# MIMALLOC_ALLOW_THP=0: no transparent huge pages for mimalloc's first segment, allocated before
# main refuses them for the rest of the process (docs/deployment.md, "Memory").
ENV CLIENT_DIR=/app/client/dist \
    MIMALLOC_ALLOW_THP=0 \
    HOST=0.0.0.0 \
    PORT=3000 \
    RUST_LOG=info
USER privmsg
EXPOSE 3000
# SIGTERM (docker stop) drains the node: departures saved and announced, clients reconnect
# elsewhere; the server handles the signal itself, even as PID 1.
CMD ["privmsg-server"]
