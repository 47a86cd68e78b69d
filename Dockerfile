# syntax=docker/dockerfile:1
# The production image: `chat-history-api serve`, settings from the environment (see README).
#   docker build -t chat-history-api .
#   docker run --rm -p 8000:8000 --env-file prod.env chat-history-api

# Build stage: a virtualenv holding the project and its runtime dependencies only.
FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /src
# The service's lock first (no extras: the dev stack and the test tools stay out of the image):
# its exact versions, every file checked against its hash, in a layer a code change keeps.
COPY requirements/service.txt ./requirements/
RUN /opt/venv/bin/pip install --upgrade pip \
    && /opt/venv/bin/pip install --require-hashes --requirement requirements/service.txt
COPY pyproject.toml README.md ./
COPY graphql_api ./graphql_api
# Its dependencies are all in place already: only the project itself.
RUN /opt/venv/bin/pip install --no-deps .

# Runtime stage: the virtualenv, a non-root user, nothing else.
FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
COPY --from=builder /opt/venv /opt/venv
USER app
EXPOSE 8000
# Liveness only: slim has no curl, so the venv's Python makes the request. A load balancer
# should probe /readyz, which also checks the service's dependencies.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["chat-history-api", "serve"]
CMD ["--host", "0.0.0.0", "--port", "8000"]
