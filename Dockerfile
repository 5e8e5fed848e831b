# syntax=docker/dockerfile:1
#
# The authorization server in production shape: migrations, then granian via `authserver serve`.
#
#   docker build -t authserver .
#   docker run --rm -p 5000:5000 \
#     -e AUTHSERVER_ISSUER=https://auth.example.com \
#     -e AUTHSERVER_DATABASE_URL=postgresql+psycopg://user:password@db/authserver \
#     -v authserver-keys:/app/keys -v authserver-instance:/app/instance \
#     authserver
#
# Every setting is an AUTHSERVER_* variable (README). The default issuer, http://127.0.0.1:5000,
# is only for trying the image on one machine: anything reachable needs an https:// issuer.
# The default database is SQLite in the instance volume; run PostgreSQL for more than one instance.
# Accounts and clients are made with the same CLI, e.g.
#   docker run --rm -i … authserver authserver users create --email E --name N --password-stdin

# -- builder: a virtual environment with the project installed -------------------------
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app

# Dependencies first, pinned in pyproject.toml, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# The project itself, editable: templates/, static/ and migrations/ sit next to the package and
# are found relative to it, so /app stays the same path in the final image.
COPY . /app
RUN pip install --no-deps -e /app

# -- final: the venv and the source, run as an unprivileged user -----------------------
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AUTHSERVER_KEYS_DIR=/app/keys \
    AUTHSERVER_INSTANCE_DIR=/app/instance

RUN groupadd --system --gid 10001 authserver \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin authserver

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app

# Only the key store and the instance directory are writable, and only by the server's user.
# (Before VOLUME: a new volume starts with this ownership; changes after VOLUME are discarded.)
RUN mkdir -p /app/keys /app/instance \
    && chown 10001:10001 /app/keys /app/instance \
    && chmod 0700 /app/keys /app/instance

WORKDIR /app
USER 10001:10001
VOLUME ["/app/keys", "/app/instance"]
EXPOSE 5000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/healthz', timeout=4)"]

# The shell only sequences the two commands; exec makes the server's main process PID 1, so it gets
# `docker stop`'s SIGTERM and shuts down gracefully. `serve` makes the first signing key if
# the key store is empty.
CMD ["/bin/sh", "-c", "authserver db upgrade && exec authserver serve --host 0.0.0.0 --port 5000"]
