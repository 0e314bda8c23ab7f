"""Vault fixtures: synthetic face embeddings and a throw-away SoftHSM2 token."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN_LABEL = "limen-test"
TOKEN_PIN = "test-user-pin-4711"


def synthetic_faces(identities: int, per_identity: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """dlib-like embeddings (norm ≈ 1.4, same person ≈ 0.25 apart, others ≈ 0.9): (n, 128), labels."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(0, 1, 128)
    centre *= 1.25 / np.linalg.norm(centre)
    people = centre + rng.normal(0, 0.6 / np.sqrt(2 * 128), (identities, 128)) * np.sqrt(2)
    people = people + rng.normal(0, 0.035, (identities, 128))
    samples = np.repeat(people, per_identity, axis=0) + rng.normal(0, 0.0156, (identities * per_identity, 128))
    return samples, np.repeat(np.arange(identities), per_identity)


@pytest.fixture(scope="session")
def softhsm_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A SOFTHSM2_CONF with one freshly initialised token; skips when SoftHSM2 is not installed."""
    if shutil.which("softhsm2-util") is None or not Path(SOFTHSM_MODULE).exists():
        pytest.skip("SoftHSM2 not installed (apt-get install softhsm2)")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    old = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", TOKEN_LABEL, "--so-pin", "so-pin-0815",
         "--pin", TOKEN_PIN],
        check=True, capture_output=True,
    )
    yield {"SOFTHSM2_CONF": str(conf)}
    if old is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = old
