"""Victim process for the SIGKILL fault-injection campaign (run: python fault_victim.py DATA_DIR MODE).

MODE `enrol`: prints `ready`, then enrols (and re-enrols) users forever, printing
`ok <user>` after each put returned.  MODE `zeroize`: prints `ready`, zeroizes,
prints `done`.  The parent kills it with SIGKILL at a random moment.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def main() -> None:
    from limen.bio.templates import Modality
    from limen.config import load_settings
    from limen.vault import open_template_store

    data_dir, mode = Path(sys.argv[1]), sys.argv[2]
    dirs = [Path(p) for p in sys.argv[3:]]
    extra = {"fragments_n": len(dirs), "fragments_k": max(1, len(dirs) - 1), "fragment_dirs": dirs} if dirs else {}
    store = open_template_store(load_settings(data_dir, **extra))
    rng = np.random.default_rng()
    if mode == "enrol":
        store.vault.project(np.zeros(128))  # derive the transform now, so kills land inside puts
    print("ready", flush=True)
    if mode == "zeroize":
        store.zeroize()
        print("done", flush=True)
        return
    i = 0
    while True:
        user = f"user-{i % 40}"
        store.put(user, Modality.FACE, embedding_of(user, rng))
        print(f"ok {user}", flush=True)
        i += 1


def embedding_of(user: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """A fixed vector per user (plus small noise when `rng` is given)."""
    base = np.random.default_rng(int(user.split("-")[1])).normal(0, 0.1, 128)
    return base + (rng.normal(0, 0.001, 128) if rng is not None else 0.0)


if __name__ == "__main__":
    main()
