# The service's image: slim, non-root, dependencies exactly as locked (requirements.lock, made by
# `uv pip compile pyproject.toml --extra postgres --generate-hashes`; see docs/operations.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 returnflow \
 && useradd --system --uid 10001 --gid returnflow --home-dir /var/lib/returnflow --create-home returnflow

WORKDIR /app
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY domain domain
COPY service service
COPY projections projections
RUN pip install --no-deps . && rm -rf build *.egg-info

USER returnflow:returnflow
WORKDIR /var/lib/returnflow
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('RETURNFLOW_PORT', '8080'), timeout=2)"]
CMD ["returnflow", "serve", "--host", "0.0.0.0"]
