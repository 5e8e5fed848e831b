"""The ceiling: raw RS256 signatures (RSA-2048, PKCS#1 v1.5, SHA-256) per second on one core with
`cryptography`, the work one access token cannot do without. Run as its own process pinned to one
CPU; prints one JSON line: signatures, wall seconds, CPU seconds, and the same for verifications
(what a resource service does per JWT).

    python -m bench.rsa_ceiling [--seconds 3] [--cpu 1] [--bits 2048]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--bits", type=int, default=2048)
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    key = rsa.generate_private_key(public_exponent=65537, key_size=args.bits)
    # A signing input shaped like one of our access tokens (header.payload, ~700 bytes).
    header = b64(json.dumps({"alg": "RS256", "typ": "at+jwt", "kid": "k" * 43}).encode())
    payload = b64(json.dumps({"iss": "http://127.0.0.1:5000", "aud": "http://127.0.0.1:5001", "sub": "x" * 24,
                              "client_id": "y" * 24, "jti": "z" * 32, "iat": 1, "exp": 3601,
                              "scope": ["openid", "profile", "email", "read:users"], "name": "Bench User",
                              "email": "bench@example.com", "plan": "enterprise"}).encode())
    message = header + b"." + payload
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    for _ in range(20):  # warm up
        key.sign(message, pkcs1, sha256)
    count = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    deadline = wall0 + args.seconds
    while time.perf_counter() < deadline:
        for _ in range(10):
            key.sign(message, pkcs1, sha256)
        count += 10
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    # Verification (what a resource service does per JWT), a tenth of the time.
    public, signature = key.public_key(), key.sign(message, pkcs1, sha256)
    verified = 0
    vcpu0 = time.process_time()
    deadline = time.perf_counter() + args.seconds / 10
    while time.perf_counter() < deadline:
        for _ in range(10):
            public.verify(signature, message, pkcs1, sha256)
        verified += 10
    vcpu = time.process_time() - vcpu0
    print(json.dumps({"signatures": count, "wall_s": wall, "cpu_s": cpu, "verifications": verified,
                      "verify_cpu_s": vcpu, "bits": args.bits, "cpu": args.cpu}))


if __name__ == "__main__":
    main()
