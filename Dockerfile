# minyi: container image.
#
#   docker build -t minyi .
#   docker run --rm -p 8080:8080 minyi demo                          # SQLite demo in /var/lib/minyi
#   docker run --rm -e DATABASE_URL=postgres://... -e MINYI_SECRET=... minyi migrate
#
# Stages: chef (toolchain + cargo-chef) → planner (recipe of the dependency graph) → cacher
# (builds only the dependencies, cached while Cargo.toml/Cargo.lock do not change) → builder
# (builds minyi itself) → runtime (Debian slim, the binary and nothing else).
#
# The build and runtime images are both Debian bookworm, so the binary's glibc matches.
# For reproducible production builds, pin the two base images by digest (image:tag@sha256:…).

# ---------------------------------------------------------------------------------------------
# chef: the Rust toolchain (gcc included, which ring and the bundled SQLite need) + cargo-chef.
# cargo-chef is built from crates.io at a pinned version (a minute or two, once; the layer is
# cached). The prebuilt lukemathwalker/cargo-chef:<chef>-rust-<rust>-bookworm images would skip
# that compile, at the price of a third-party base image.
FROM rust:1.95-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.77
WORKDIR /app

# ---------------------------------------------------------------------------------------------
# planner: reduce the project to a recipe (manifests + lockfile). The recipe only changes when
# dependencies change, so editing src/ does not invalidate the cacher stage below.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# ---------------------------------------------------------------------------------------------
# cacher: compile every dependency (the slow part) against a skeleton of the project.
# Same profile and flags as the real build below, otherwise cargo would rebuild them.
FROM chef AS cacher
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json

# ---------------------------------------------------------------------------------------------
# builder: continues from cacher (same /app, same target/ and cargo registry), so only the
# minyi crate itself is compiled here.
FROM cacher AS builder
# Only what the build reads: the manifests, the sources and the migrations, which
# sqlx::migrate! embeds at compile time. Docs, tests and deploy files stay out, so changing
# them does not trigger a rebuild. (No sqlx offline data is needed: no query! macros.)
# The [[test]] and [[bench]] targets in Cargo.toml are not built here; their paths still
# exist, as the dummy files cargo-chef's skeleton left in this stage.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked --bin minyi

# ---------------------------------------------------------------------------------------------
# runtime
FROM debian:bookworm-slim AS runtime

# ca-certificates: rustls verifies the WeChat API's certificate against the system roots.
# curl: used only by HEALTHCHECK below (≈ a few MB). To drop it, remove it here and point the
#       health check at something else (e.g. an orchestrator's HTTP probe on /health/live).
# No OpenSSL: TLS is rustls.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

# Unprivileged user with a fixed uid/gid (10001), so volume ownership and Kubernetes
# runAsUser/runAsNonRoot checks are predictable. Its home /var/lib/minyi is the working
# directory: with SQLite the default database is ./minyi.db, so it must be writable. Mount a
# volume there to keep SQLite data; a fresh named volume inherits this ownership.
RUN groupadd --gid 10001 minyi \
    && useradd --uid 10001 --gid 10001 --home-dir /var/lib/minyi --no-create-home \
        --shell /usr/sbin/nologin minyi \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/minyi

# Owned by root and not writable by the service user.
COPY --from=builder /app/target/release/minyi /usr/local/bin/minyi

WORKDIR /var/lib/minyi
USER 10001:10001

# The built-in default bind is 127.0.0.1:8080, unreachable from outside a container.
# Logs go to stdout as JSON lines for the log collector.
ENV MINYI_BIND=0.0.0.0:8080 \
    MINYI_LOG_FORMAT=json
EXPOSE 8080

# Liveness, not readiness: a database or Redis outage must not make Docker consider the
# process dead (load balancers use /health/ready for routing). The port must follow
# MINYI_BIND if that is changed. `|| exit 1` because Docker reserves exit codes other than 0/1.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS --max-time 2 -o /dev/null http://127.0.0.1:8080/health/live || exit 1

# minyi runs as PID 1 and handles SIGTERM itself: it stops accepting, lets in-flight requests
# finish (up to MINYI_SHUTDOWN_TIMEOUT_SECS, default 30 s) and exits. Give the container a
# longer stop timeout than that (docker stop -t 35, compose stop_grace_period: 35s, Kubernetes
# terminationGracePeriodSeconds) or requests are cut off at Docker's default 10 s.
STOPSIGNAL SIGTERM

ENTRYPOINT ["minyi"]
CMD ["serve"]
