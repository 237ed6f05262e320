# One image for the four services; docker-compose.yml picks the service with `command:`,
# e.g. `uv run --no-sync fx-commission`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1

RUN pip install --no-cache-dir "uv==0.13.8"

WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when a lock or manifest changes.
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/pyproject.toml
COPY services/referral-binding/pyproject.toml services/referral-binding/pyproject.toml
COPY services/qualification/pyproject.toml services/qualification/pyproject.toml
COPY services/commission/pyproject.toml services/commission/pyproject.toml
COPY services/payout/pyproject.toml services/payout/pyproject.toml
RUN uv sync --frozen --no-dev --all-packages --no-install-workspace

COPY . .
RUN uv sync --frozen --no-dev --all-packages

RUN useradd --system --no-create-home --home-dir /app fx && mkdir -p /app/var && chown fx /app/var
USER fx

ENV PATH="/app/.venv/bin:${PATH}" \
    FX_HTTP_HOST=0.0.0.0
EXPOSE 8101 8102 8103 8104
CMD ["uv", "run", "--no-sync", "fx-referral-binding"]
