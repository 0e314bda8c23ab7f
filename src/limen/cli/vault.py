"""`limen vault …` (status, zeroize, rotate) and `limen lab protection`.

The vault commands open the lock as every command does (`limen.runtime.open_runtime`); a zeroize, a
rotation and a re-provisioning are recorded on the audit trail (kind VAULT).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer

from limen import thresholds
from limen.cli.common import STATE, output, progress
from limen.cli.common import gettext as _
from limen.errors import BadRequest

if TYPE_CHECKING:
    from limen.runtime import Runtime

vault_app = typer.Typer(help="Template vault: protected, sealed templates and crypto-erase.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(vault_app, name="vault")
    try:
        from limen.cli.lab import lab_app
    except ModuleNotFoundError:  # the lab group is optional
        return
    lab_app.command("protection")(protection)


def _record(rt: Runtime, reason: str, **data: Any) -> None:
    """The vault change on the lock's audit trail (kind VAULT: zeroize, rotate, provision)."""
    from limen.audit.event import Event, EventKind

    rt.audit.append(Event(EventKind.VAULT, rt.clock.now(), actor="cli", subject="vault", reason=reason,
                          source="cli", data=data))


def _status_dict() -> dict[str, Any]:
    from limen.runtime import open_runtime

    rt = open_runtime(STATE.settings)
    try:
        s = rt.store.status()
    finally:
        rt.close()
    settings = STATE.settings
    return {"state": s.state, "keystore": s.keystore, "key_generations": s.key_generations,
            "templates": s.records, "template_bits": s.template_bits,
            "fragments": {"n": settings.fragments_n, "k": settings.fragments_k,
                          "dirs": [str(d) for d in settings.fragment_dirs]}}


@vault_app.command("status")
def status() -> None:
    """State of the vault (active / erased), key store, key generations, number of templates."""
    data = _status_dict()
    frag = data["fragments"]
    where = "SQLite" if frag["n"] == 1 and not frag["dirs"] else _("{k}-of-{n} fragments").format(
        k=frag["k"], n=frag["n"])
    output(data, _("vault {state}: {templates} templates ({bits} bits), key store {keystore} (root key generations "
                   "{generations}), records in {where}").format(
        state=data["state"], templates=data["templates"], bits=data["template_bits"], keystore=data["keystore"],
        generations=data["key_generations"] or _("none"), where=where))


@vault_app.command("zeroize")
def zeroize(yes: Annotated[bool, typer.Option("--yes", help="Confirm: every template is destroyed.")] = False) -> None:
    """Crypto-erase: destroy the root keys, then every wrapped data key.  Irreversible.

    With a paired fingerprint module (match on sensor), its library is emptied first, while the module's
    password (sealed under the vault) can still be read; a module that refuses or does not answer is reported
    (stderr, exit 1, audited as failed) and the vault is zeroized all the same."""
    if not yes:
        raise BadRequest("--yes", "zeroize destroys every enrolled template; pass --yes to confirm")
    from limen.runtime import open_runtime

    rt = open_runtime(STATE.settings)
    try:
        on_sensor = rt.empty_sensor("cli", rt.clock.now())  # before: after the zeroize the module cannot be asked
        started = time.perf_counter()
        rt.store.zeroize()
        ms = 1000 * (time.perf_counter() - started)
        _record(rt, "zeroized", milliseconds=round(ms, 1), **on_sensor.counts())
    finally:
        rt.close()
    said = _("vault zeroized in {ms} ms; re-enrol after `limen vault rotate --reprovision`").format(ms=f"{ms:.1f}")
    if on_sensor.emptied:
        said += "\n" + _("fingerprint sensor library emptied ({n} page(s))").format(n=len(on_sensor.erased))
    output({"state": "erased", "milliseconds": ms, **on_sensor.counts()}, said)
    if not on_sensor.complete:
        typer.echo(_("the fingerprint sensor's library was not emptied (empty it by hand): {detail}").format(
            detail=on_sensor.detail), err=True)
        raise typer.Exit(1)


@vault_app.command("rotate")
def rotate(
    reprovision: Annotated[bool, typer.Option("--reprovision",
                                              help="After a zeroize: fresh keys, empty vault.")] = False,
) -> None:
    """New root key with every data key re-wrapped under it (or, with --reprovision, a fresh vault)."""
    from limen.runtime import open_runtime

    rt = open_runtime(STATE.settings)
    store = rt.store
    try:
        if reprovision:
            if store.status().state == "active" and store.status().records:
                raise BadRequest("--reprovision", "the vault holds templates; zeroize it first")
            store.reprovision()
            _record(rt, "reprovisioned", key_generations=store.status().key_generations)
            data: dict[str, Any] = {"state": "active", "reprovisioned": True}
            human = _("vault re-provisioned with fresh keys (no templates)")
        else:
            moved = store.rotate()
            data = {"state": "active", "rewrapped": moved, "key_generations": store.status().key_generations}
            _record(rt, "rotated", rewrapped=moved, key_generations=data["key_generations"])
            human = _("root key rotated: {n} templates re-wrapped under generation {generation}").format(
                n=moved, generation=data["key_generations"][-1])
    finally:
        rt.close()
    output(data, human)


def protection(
    identity_folders: Annotated[Path | None, typer.Option(help="One folder per identity (e.g. lfw-subset).")] = None,
    pairs: Annotated[Path | None, typer.Option(help="CSV of labelled pairs: file_x,file_y,Decision.")] = None,
    devices: Annotated[int, typer.Option(help="Random device keys to average over.", min=2, max=50)] = 5,
    out: Annotated[Path, typer.Option(help="Folder for protection.json and protection.md.")] = Path("lab-out"),
    bits: Annotated[int, typer.Option(help="Template bits (0: the vault's).", min=0)] = 0,
    attack_iterations: Annotated[int, typer.Option(help="Refinement steps of the inversion attack.", min=0)] = 20,
) -> None:
    """Template protection: raw vs protected accuracy, inversion attack, cross-device linkability."""
    from limen.lab import datasets
    from limen.lab import protection as prot

    if identity_folders is None and pairs is None:
        raise BadRequest("--identity-folders/--pairs", "give at least one evaluation set")
    if bits % 64:
        raise BadRequest("--bits", "must be a multiple of 64")
    sets: dict[str, prot.Scored] = {}
    identity_set = None
    norms: dict[str, float] = {}
    for name, path in (("identity-folders", identity_folders), ("pairs", pairs)):
        if path is None:
            continue
        if name == "identity-folders":
            samples = datasets.identity_folder_samples(path)
            pair_list = datasets.all_pairs(samples)
        else:
            samples, pair_list = datasets.pairs_csv(path)
        with progress(f"embedding {path.name}", len(samples)) as advance:
            emb = datasets.embed_samples(samples, on_progress=advance)
        sets[path.name] = prot.scored(pair_list, emb)
        got = [(s, e) for s in samples if (e := emb[s.id]) is not None]
        norms[name] = float(np.mean([np.linalg.norm(e) for _, e in got]))
        if name == "identity-folders":
            identity_set = (np.stack([e for _, e in got]), [s.identity for s, _ in got])
    # The attacker's norm prior comes from the *other* (public) set when there is one.
    public_norm = norms.get("pairs", norms.get("identity-folders", 1.0))
    report = prot.evaluate(sets, identity_set, public_norm, devices=devices,
                           bits=bits or thresholds.VAULT_FACE_BITS, attack_iterations=attack_iterations)
    out.mkdir(parents=True, exist_ok=True)
    data = report.as_dict()
    (out / "protection.json").write_text(json.dumps(data, indent=2))
    markdown = render_markdown(data)
    (out / "protection.md").write_text(markdown)
    output({**data, "files": [str(out / "protection.json"), str(out / "protection.md")]}, markdown)


def _p(x: float) -> str:
    return f"{100 * x:.2f} %"


def render_markdown(data: dict[str, Any]) -> str:
    lines = [f"# Template protection ({data['bits']} bits, {data['devices']} device keys)", "",
             "| set | pairs (gen/imp) | raw acc | prot. acc (mean / worst) | raw EER | prot. EER (mean / worst) "
             "| acc loss (worst, pts) | EER loss (worst, pts) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in data["sets"]:
        lines.append(
            f"| {s['name']} | {s['genuine']}/{s['impostor']} | {_p(s['raw']['accuracy'])} | "
            f"{_p(s['protected']['accuracy'])} / {_p(s['protected_worst']['accuracy'])} | {_p(s['raw']['eer'])} | "
            f"{_p(s['protected']['eer'])} / {_p(s['protected_worst']['eer'])} | {s['accuracy_loss_points']:.2f} | "
            f"{s['eer_loss_points']:.2f} |")
    if data["irreversibility"]:
        ir = data["irreversibility"]
        lines += ["", "Irreversibility (attacker holds template + device transform key):",
                  f"- false accept by reconstruction, other images of the person: "
                  f"{_p(ir['far_by_reconstruction_other_images'])} "
                  f"(real images of the person are accepted at {_p(ir['genuine_accept_real_images'])})",
                  f"- same image: {_p(ir['far_by_reconstruction_same_image'])}; impostors accepting the "
                  f"reconstruction: {_p(ir['impostor_accept_of_reconstruction'])}"]
    if data["unlinkability"]:
        un = data["unlinkability"]
        lines += ["", "Unlinkability (same faces on two devices), D↔sys:",
                  f"- unmasked bits: {un['d_sys_two_devices_unmasked_bits']:.3f}; stored templates: "
                  f"{un['d_sys_two_devices_stored_templates']:.3f}; estimator floor (shuffled labels): "
                  f"{un['d_sys_estimator_floor_shuffled_labels']:.3f}; control, same device: "
                  f"{un['d_sys_control_same_device']:.3f}"]
    return "\n".join(lines) + "\n"
