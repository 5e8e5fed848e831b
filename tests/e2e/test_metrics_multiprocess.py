"""`authserver serve` with two granian workers: `/metrics`, whichever worker answers it, adds up
what every worker counted (prometheus-client's multiprocess mode, in a private directory the
serving command makes before forking and removes when it stops); `/readyz` answers ready."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from .processes import new_workspace, running_server

ROUNDS = 20  # at most; each sends BATCH token requests on fresh connections
BATCH = 16
TOKENS_ISSUED = "authserver_tokens_issued"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, e2e_database_url):
    temp = tmp_path_factory.mktemp("metrics-tmp")  # where the server makes its metrics directory
    space = new_workspace(tmp_path_factory, e2e_database_url, "metrics", TMPDIR=str(temp))
    space.run("db", "upgrade")
    space.run("keys", "generate")
    client = json.loads(space.run("clients", "create", "--name", "Metrics", "--grant-type", "client_credentials",
                                  "--scope", "read:users"))
    return space, temp, (client["client_id"], client["client_secret"])


def issued_per_worker(directory: Path) -> dict[str, float]:
    """Client-credentials tokens each worker counted, from its own file (counter_<pid>.db)."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        counts[path.stem] = sum(
            value for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path))
            if json.loads(key)[0] == TOKENS_ISSUED and json.loads(key)[2] == {"grant": "client_credentials"})
    return counts


def scraped_tokens(server) -> float:
    text = requests.get(server.url("/metrics"), timeout=10).text  # a fresh connection: any worker
    return next(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                if sample.name == TOKENS_ISSUED + "_total" and sample.labels == {"grant": "client_credentials"})


def test_metrics_add_up_every_worker_and_their_directory_goes_with_the_server(workspace):
    space, temp, credentials = workspace

    def token(_):
        return requests.post(space.issuer + "/oauth/token", auth=credentials, timeout=30,
                             data={"grant_type": "client_credentials", "scope": "read:users"}).status_code

    with running_server(space, workers=2) as server:
        assert requests.get(server.url("/readyz"), timeout=10).json()["status"] == "ready"
        [directory] = temp.glob("authserver-metrics-*")
        sent = 0
        with ThreadPoolExecutor(8) as pool:
            for _ in range(ROUNDS):  # until both workers have served some (the kernel picks)
                assert list(pool.map(token, range(BATCH))) == [200] * BATCH
                sent += BATCH
                if sum(1 for count in issued_per_worker(directory).values() if count) >= 2:
                    break
        per_worker = issued_per_worker(directory)
        assert len([count for count in per_worker.values() if count]) >= 2, per_worker
        assert sum(per_worker.values()) == sent
        assert [scraped_tokens(server) for _ in range(6)] == [sent] * 6
    assert not directory.exists()
