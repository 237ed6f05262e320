# One image for the four services and the console (fx-console); docker-compose.yml picks the service with `command:`
# (e.g. `fx-commission`). PYTHON_IMAGE is any Debian-based image with Python 3.11: the official
# python:3.11-slim by default, or the locally made base (deploy/containers/build.sh passes
# PYTHON_IMAGE=localhost/fx-debian-base:bookworm where no registry is reachable).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PYTHONDONTWRITEBYTECODE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1 \
    UV_SYSTEM_CERTS=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# Debian's python3 comes without pip; python:3.11-slim has it.
RUN python3 -m pip --version >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >/dev/null; }
RUN python3 -m pip install --no-cache-dir -q "uv==0.13.9"
WORKDIR /app
# Dependencies first, in their own layer: it is rebuilt only when a lock or manifest changes.
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/pyproject.toml
COPY services/referral-binding/pyproject.toml services/referral-binding/pyproject.toml
COPY services/qualification/pyproject.toml services/qualification/pyproject.toml
COPY services/commission/pyproject.toml services/commission/pyproject.toml
COPY services/payout/pyproject.toml services/payout/pyproject.toml
COPY tools/fxctl/pyproject.toml tools/fxctl/pyproject.toml
COPY apps/console/pyproject.toml apps/console/pyproject.toml
RUN uv sync --frozen --no-dev --all-packages --no-install-workspace --python python3
COPY . .
RUN uv sync --frozen --no-dev --all-packages --python python3

# The runtime: the same Python, the synced workspace, no pip/uv, a non-root user.
FROM ${PYTHON_IMAGE}
RUN echo 'fx:x:10001:10001::/app:/usr/sbin/nologin' >>/etc/passwd \
    && echo 'fx:x:10001:' >>/etc/group
COPY --from=build --chown=0:0 /app /app
RUN mkdir -p /app/var && chown fx:fx /app/var
WORKDIR /app
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FX_HTTP_HOST=0.0.0.0 \
    FX_HTTP_PORT=8101
USER fx
EXPOSE 8101 8102 8103 8104 8105
# Liveness; compose and the k8s manifests also probe /readyz (store and broker reachable).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=6 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['FX_HTTP_PORT'], timeout=3)"]
CMD ["fx-referral-binding"]
