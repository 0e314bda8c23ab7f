"""Template-vault benchmark: zeroize latency, seal/unseal throughput, durable enrol, 1:N search
over 100,000 protected templates (two-stage vs naive), and the SIGKILL fault campaign.

    python bench/vault.py [--zeroize-runs 100] [--pkcs11-runs 50] [--seal-ops 2000]
                          [--gallery 100000] [--probes 50] [--faults 200] [--fragment-faults 50]
                          [--out bench/results/vault.json]

Zeroize latency is measured from the call to (a) the crypto-erase point (intent
journaled, root keys durably destroyed) and (b) the end (wrapped data keys wiped,
vault marked erased), on a vault holding `--templates` templates, re-provisioned
between runs.  Search runs on one core (numpy bit operations are single-threaded)
over random packed templates; recall of the two-stage search is checked
separately on projected synthetic faces.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchstats import pct

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.vault helpers (synthetic faces, fault campaign)




def summary_ms(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {"median_ms": round(statistics.median(ms), 3), "p95_ms": round(pct(ms, 95), 3),
            "p99_ms": round(pct(ms, 99), 3), "max_ms": round(max(ms), 3), "n": len(ms)}


def _faces(n: int) -> np.ndarray:
    from tests.vault.conftest import synthetic_faces

    return synthetic_faces(n, 1, seed=42)[0]


def bench_zeroize(settings: Any, runs: int, templates: int) -> dict[str, Any]:
    from limen.bio.templates import Modality
    from limen.vault import open_template_store

    faces = _faces(templates)
    store = open_template_store(settings)
    erase, total = [], []
    for _ in range(runs):
        if store.status().state != "active":
            store.reprovision()
        for i in range(templates):
            store.put(f"user-{i}", Modality.FACE, faces[i])
        timing = store.zeroize()
        erase.append(timing.crypto_erase_s)
        total.append(timing.total_s)
    store.close()
    return {"templates": templates, "crypto_erase": summary_ms(erase), "total": summary_ms(total)}


def bench_enrol(settings: Any, n: int) -> dict[str, Any]:
    from limen.bio.templates import Modality
    from limen.vault import open_template_store

    faces = _faces(n)
    store = open_template_store(settings)
    if store.status().state != "active":
        store.reprovision()
    lat = []
    for i in range(n):
        t = time.perf_counter()
        store.put(f"enrol-{i}", Modality.FACE, faces[i])
        lat.append(time.perf_counter() - t)
    store.close()
    return {"durable_put": summary_ms(lat)}


def bench_seal(keystore: Any, ops: int, payload_bytes: int) -> dict[str, Any]:
    from limen.vault import sealed

    gen = keystore.generations()[-1] if keystore.generations() else keystore.create_key()
    payload = os.urandom(payload_bytes)
    binding = sealed.Binding("template", "user", "face")
    seal_t, unseal_t = [], []
    blobs = []
    for _ in range(ops):
        t = time.perf_counter()
        blobs.append(sealed.seal(keystore, gen, binding, payload))
        seal_t.append(time.perf_counter() - t)
    for blob in blobs:
        t = time.perf_counter()
        sealed.unseal(keystore, binding, blob)
        unseal_t.append(time.perf_counter() - t)
    return {"payload_bytes": payload_bytes, "seal": summary_ms(seal_t), "unseal": summary_ms(unseal_t),
            "seal_per_s": round(ops / sum(seal_t)), "unseal_per_s": round(ops / sum(unseal_t))}


def _softhsm(base: Path) -> dict[str, str] | None:
    module = "/usr/lib/softhsm/libsofthsm2.so"
    if shutil.which("softhsm2-util") is None or not Path(module).exists():
        return None
    (base / "tokens").mkdir(parents=True)
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "bench", "--so-pin", "bench-so-0",
                    "--pin", "bench-pin-0"], check=True, capture_output=True)
    return {"module": module, "label": "bench", "pin": "bench-pin-0"}


def bench_search(gallery: int, probes: int, nbytes: int, naive_probes: int) -> dict[str, Any]:
    from limen.vault.index import BitIndex

    rng = np.random.default_rng(7)
    index = BitIndex(nbytes)
    chunk = 10_000
    for start in range(0, gallery, chunk):
        block = rng.integers(0, 256, (min(chunk, gallery - start), nbytes), dtype=np.uint8)
        for i, row in enumerate(block):
            index.add(f"u{start + i}", row)
    picked = rng.choice(len(index), probes, replace=False)
    targets = [index._full[int(i)].view(np.uint8).copy() for i in picked]
    flips = (rng.random((len(targets), nbytes * 8)) < 0.1).astype(np.uint8)  # a genuine probe: 10 % bits differ
    probe_bits = [np.bitwise_xor(t, np.packbits(f)) for t, f in zip(targets, flips, strict=True)]
    two_stage, exhaustive = [], []
    full = index._full[: len(index)]
    hits = 0
    for p, want in zip(probe_bits, picked, strict=True):
        t = time.perf_counter()
        found = index.search(p, 5)
        two_stage.append(time.perf_counter() - t)
        hits += found[0][0] == f"u{want}"
        t = time.perf_counter()
        d = np.bitwise_count(np.bitwise_xor(full, p.view(np.uint64))).sum(axis=1)
        np.argpartition(d, 5)[:5]
        exhaustive.append(time.perf_counter() - t)
    as_ints = [int.from_bytes(full[i].tobytes(), "big") for i in range(len(index))]
    naive = []
    for p in probe_bits[:naive_probes]:
        q = int.from_bytes(p.tobytes(), "big")
        t = time.perf_counter()
        sorted(range(len(as_ints)), key=lambda i: (as_ints[i] ^ q).bit_count())[:5]
        naive.append(time.perf_counter() - t)
    return {"gallery": gallery, "template_bits": nbytes * 8, "memory_mb": round(full.nbytes / 2**20),
            "two_stage_vectorised": summary_ms(two_stage), "two_stage_rank1_hits": hits / len(picked),
            "exhaustive_vectorised": summary_ms(exhaustive),
            "naive_python_loop": summary_ms(naive)}


def bench_recall(identities: int, bits: int) -> dict[str, Any]:
    """Two-stage top-1 versus exhaustive top-1 on projected synthetic faces (same person, new sample)."""
    from tests.vault.conftest import synthetic_faces

    from limen.vault.index import BitIndex
    from limen.vault.lab import DeviceTransform

    x, y = synthetic_faces(identities, 2, seed=9)
    device = DeviceTransform(bits=bits)
    bits_all = np.concatenate([device.project(x[i : i + 500]) for i in range(0, len(x), 500)])
    index = BitIndex(bits // 8)
    for i in range(0, len(x), 2):
        index.add(f"id{y[i]}", bits_all[i])
    full = index._full[: len(index)]
    agree = correct = 0
    for i in range(1, len(x), 2):
        top = index.search(bits_all[i], 1)[0][0]
        d = np.bitwise_count(np.bitwise_xor(full, bits_all[i].view(np.uint64))).sum(axis=1)
        agree += top == index._keys[int(np.argmin(d))]
        correct += top == f"id{y[i]}"
    return {"identities": identities, "two_stage_equals_exhaustive": agree / identities,
            "rank1_correct": correct / identities}


def bench_faults(base: Path, runs: int, fragments: int) -> dict[str, Any]:
    from tests.vault.fault_campaign import run_campaign

    t = time.perf_counter()
    result = run_campaign(base, runs=runs, seed=2026, fragments=fragments)
    return {"runs": result.runs, "fragments": fragments, "outcomes": result.outcomes,
            "failures": result.failures, "seconds": round(time.perf_counter() - t, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zeroize-runs", type=int, default=100)
    parser.add_argument("--pkcs11-runs", type=int, default=50)
    parser.add_argument("--templates", type=int, default=10)
    parser.add_argument("--seal-ops", type=int, default=2000)
    parser.add_argument("--enrols", type=int, default=50)
    parser.add_argument("--gallery", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--naive-probes", type=int, default=3)
    parser.add_argument("--recall-identities", type=int, default=2000)
    parser.add_argument("--faults", type=int, default=200)
    parser.add_argument("--fragment-faults", type=int, default=50)
    parser.add_argument("--tmp-dir", type=Path, default=None,
                        help="Where data directories go (default: the system temp dir; /dev/shm isolates disk latency)")
    parser.add_argument("--runs", type=int, default=None,
                        help="Only the SIGKILL campaign (enrol / zeroize alternating), with this many runs.")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "vault.json")
    args = parser.parse_args()
    if args.runs is not None:
        started_load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(dir=args.tmp_dir) as tmp:
            faults = bench_faults(Path(tmp), args.runs, 0)
        out = {"command": "python bench/vault.py " + " ".join(sys.argv[1:]), "faults": faults,
               "load_avg_1min": [round(started_load, 2), round(os.getloadavg()[0], 2)]}
        target = args.out.with_name("vault-kills.json")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps(out, indent=2))
        return

    from limen import thresholds
    from limen.config import load_settings
    from limen.vault.keystore.software import SoftwareKeyStore

    results: dict[str, Any] = {"machine": {"python": platform.python_version(), "cpu": platform.processor(),
                                           "cores": os.cpu_count(), "load_avg_1min": os.getloadavg()[0]},
                               "template_bits": thresholds.VAULT_FACE_BITS}
    results["data_dir_filesystem"] = str(args.tmp_dir or tempfile.gettempdir())
    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as tmp:
        base = Path(tmp)
        print("zeroize (software) …", flush=True)
        results["zeroize_software"] = bench_zeroize(load_settings(base / "z-sw"), args.zeroize_runs, args.templates)
        print("durable enrol …", flush=True)
        results["enrol_software"] = bench_enrol(load_settings(base / "enrol"), args.enrols)
        print("seal/unseal …", flush=True)
        ks = SoftwareKeyStore(base / "seal.key")
        results["seal_software"] = bench_seal(ks, args.seal_ops, 19 + thresholds.VAULT_FACE_BITS // 8)
        token = _softhsm(base / "softhsm") if args.pkcs11_runs else None
        if token is not None:
            from limen.vault.keystore.pkcs11 import Pkcs11KeyStore

            p11 = load_settings(base / "z-p11", keystore="pkcs11", pkcs11_token_label=token["label"],
                                pkcs11_pin=token["pin"], pkcs11_module=token["module"])
            print("zeroize (PKCS#11, SoftHSM2) …", flush=True)
            results["zeroize_pkcs11"] = bench_zeroize(p11, args.pkcs11_runs, args.templates)
            pks = Pkcs11KeyStore(token["module"], token["label"], token["pin"], prefix="bench-seal")
            results["seal_pkcs11"] = bench_seal(pks, max(200, args.seal_ops // 4),
                                                19 + thresholds.VAULT_FACE_BITS // 8)
            pks.close()
        if args.gallery:
            print(f"1:N search over {args.gallery} templates …", flush=True)
            results["search"] = bench_search(args.gallery, args.probes, thresholds.VAULT_FACE_BITS // 8,
                                             args.naive_probes)
            print("two-stage recall …", flush=True)
            results["search_recall"] = bench_recall(args.recall_identities, thresholds.VAULT_FACE_BITS)
        if args.faults:
            print(f"fault injection: {args.faults} kills …", flush=True)
            results["faults"] = bench_faults(base / "faults", args.faults, 0)
        if args.fragment_faults:
            print(f"fault injection with 3 fragment locations: {args.fragment_faults} kills …", flush=True)
            results["faults_fragments"] = bench_faults(base / "faults-frag", args.fragment_faults, 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(render(results))
    print(render(results))


def render(r: dict[str, Any]) -> str:
    def row(name: str, s: dict[str, float]) -> str:
        return f"| {name} | {s['median_ms']} | {s['p95_ms']} | {s['p99_ms']} | {s['max_ms']} | {s['n']} |"

    lines = ["# bench/vault.py", "", f"machine: {r['machine']}", "",
             "| measure | median ms | p95 ms | p99 ms | max ms | n |", "| --- | --- | --- | --- | --- | --- |"]
    for key, label in (("zeroize_software", "zeroize, software"), ("zeroize_pkcs11", "zeroize, PKCS#11 (SoftHSM2)")):
        if key in r:
            lines.append(row(f"{label}: crypto-erase point", r[key]["crypto_erase"]))
            lines.append(row(f"{label}: complete", r[key]["total"]))
    lines.append(row("durable enrol (put)", r["enrol_software"]["durable_put"]))
    for key, label in (("seal_software", "software"), ("seal_pkcs11", "PKCS#11")):
        if key in r:
            lines.append(row(f"seal ({label}, {r[key]['payload_bytes']} B)", r[key]["seal"]))
            lines.append(row(f"unseal ({label})", r[key]["unseal"]))
    if "search" in r:
        s = r["search"]
        lines.append(row(f"1:N two-stage, {s['gallery']} × {s['template_bits']} bits", s["two_stage_vectorised"]))
        lines.append(row("1:N exhaustive vectorised (baseline)", s["exhaustive_vectorised"]))
        lines.append(row("1:N naive Python loop (baseline)", s["naive_python_loop"]))
        lines += ["", f"search memory: {s['memory_mb']} MiB; two-stage recall: {r['search_recall']}"]
    lines.append(f"data directories on: {r['data_dir_filesystem']}")
    for key in ("seal_software", "seal_pkcs11"):
        if key in r:
            lines.append(f"{key}: {r[key]['seal_per_s']} seals/s, {r[key]['unseal_per_s']} unseals/s")
    for key in ("faults", "faults_fragments"):
        if key in r:
            f = r[key]
            lines.append(f"{key}: {f['runs']} SIGKILLs, outcomes {f['outcomes']}, failures {len(f['failures'])}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
