"""Real Redis for tests: the shared one named by AUTHSERVER_TEST_REDIS_URL (default the local
one), or a private redis-server started on a free loopback port and stopped by PID.

Under CI=true an unreachable Redis (or a missing redis-server binary) fails the test; elsewhere
the Redis tests skip. Tests on the shared Redis use a key prefix unique to the run and delete
their keys at the end, so runs never see each other's counters.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time

import pytest
import redis

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def redis_test_url() -> str:
    return os.environ.get("AUTHSERVER_TEST_REDIS_URL", DEFAULT_REDIS)


def require_redis() -> str:
    """The shared test Redis URL, after checking it answers; fails (CI) or skips otherwise."""
    url = redis_test_url()
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {url} is unreachable: {exc}")
    finally:
        client.close()
    return url


def unique_prefix() -> str:
    return f"authserver-test-{secrets.token_hex(6)}"


def delete_keys(url: str, prefix: str) -> int:
    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        return client.delete(*keys) if keys else 0
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private redis-server on a loopback port, without persistence; stop() ends it by PID."""

    def __init__(self, port: int | None = None) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            unavailable("redis-server is not installed")
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return self
                except redis.RedisError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        unavailable(f"redis-server did not start on port {self.port}")
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
