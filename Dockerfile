# syncd: consent-gated CRM -> Mailchimp sync, as a service (`syncd serve`).
# Build:  docker build -t syncd .
# Run:    see deploy/compose.yaml and docs/operations.md.

# --- build: a wheel of syncd and of every dependency --------------------------------
FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY syncd ./syncd
RUN pip wheel --wheel-dir /wheels .

# --- runtime: the wheels installed into a slim image, run as a non-root user ---------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SYNCD_LOG_FORMAT=json \
    SYNCD_HTTP_PORT=8080
RUN groupadd --system --gid 10001 syncd \
 && useradd --system --uid 10001 --gid syncd --home-dir /var/lib/syncd --create-home \
        --shell /usr/sbin/nologin syncd
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-index --find-links /tmp/wheels syncd \
 && rm -rf /tmp/wheels
USER syncd:syncd
WORKDIR /var/lib/syncd
EXPOSE 8080
# Liveness only (the slim image has no curl): /healthz on SYNCD_HTTP_PORT.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "syncd.service.healthcheck"]
# The first SIGTERM finishes the current batch (bounded by shutdown_timeout_seconds,
# default 30 s): give `docker stop` more than that, e.g. `docker stop -t 45`.
STOPSIGNAL SIGTERM
# Descriptors: an image cannot set its own ulimit; run it with `--ulimit nofile=65536:65536`
# (deploy/compose.yaml sets it). At start syncd raises its soft limit to the hard one and
# keeps its connection cap (http_max_connections) below it, with a reserve.
# `syncd serve` upgrades the schema at start (serialised across replicas on PostgreSQL);
# deploy/compose.yaml also runs `syncd db upgrade` once as an init step.
CMD ["syncd", "serve", "--host", "0.0.0.0"]
