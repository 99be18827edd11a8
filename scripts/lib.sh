# Shared by scripts/run and scripts/test: install what a fresh Debian machine lacks.

# The allocator's memory without transparent huge pages, as the Dockerfile runs the server
# (docs/deployment.md, "Memory": the server refuses them itself after its first segment): every server
# these scripts start inherits it.
export MIMALLOC_ALLOW_THP=${MIMALLOC_ALLOW_THP:-0}

# apt_install PACKAGE...: installs Debian packages (as root, or through sudo). APT_FLAGS adds
# options, e.g. --no-install-recommends where the recommends are heavy and unneeded.
apt_install() {
  echo "==> installing $*"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}

# need_packages CMD:PACKAGE...: installs PACKAGE for each CMD that is not on the PATH.
need_packages() {
  local missing=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# need_openssl_headers: the Rust Socket.IO test client (native-tls) links against OpenSSL.
need_openssl_headers() {
  pkg-config --exists openssl 2>/dev/null || apt_install pkg-config libssl-dev
}

# npm_install DIR: installs DIR's npm packages exactly as locked, when missing or stale.
npm_install() {
  if [ ! -d "$1/node_modules" ] || [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
    echo "==> npm ci in $1"
    (cd "$1" && npm ci --no-audit --no-fund)
  fi
}

# ensure_redis: starts a local, persistent Redis (data and log in .data/redis) when none
# answers at REDIS_URL. Daemonized, so it outlives the calling script and keeps the data.
ensure_redis() {
  need_packages redis-server:redis-server redis-cli:redis-tools
  redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1 && return 0
  local port
  port=$(echo "$REDIS_URL" | sed -E 's#.*:([0-9]+).*#\1#')
  mkdir -p .data/redis
  echo "==> no Redis answers at $REDIS_URL; starting one on port $port (data in .data/redis)"
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --dir "$PWD/.data/redis" \
    --appendonly yes --logfile "$PWD/.data/redis/redis.log"
  for _ in $(seq 50); do redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1 && break; sleep 0.1; done
}

# build_client: installs the web client's packages when needed and builds client/dist.
build_client() {
  [ -f client/package.json ] || return 0
  npm_install client
  echo "==> building the web client"
  (cd client && npm run build --silent)
}
