"""Settings from a TOML file and `LIMEN_*` environment variables, validated.

Precedence: explicit arguments > environment > `limen.toml` in the data
directory (or `LIMEN_CONFIG`) > defaults.  Defaults are embedded: SQLite and
local files under the user's data directory, nothing to set up.
"""

from __future__ import annotations

import os
import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from limen.errors import ConfigError


class KeyStoreKind(StrEnum):
    SOFTWARE = "software"
    PKCS11 = "pkcs11"


class EmbedBackend(StrEnum):
    AUTO = "auto"
    DLIB = "dlib"
    ONNX = "onnx"


class FingerMatching(StrEnum):
    HOST = "host"      # the sensor's image is uploaded and matched by Limen (a score the audit can keep)
    SENSOR = "sensor"  # enrol and search on the module's own library (docs/finger.md, "Match on sensor")


class DoorKind(StrEnum):
    SIMULATED = "simulated"
    GPIO = "gpio"


TAMPER_SOURCE_KINDS = ("case", "escutcheon", "shock")  # GPIO switch sources `tamper_sources` may name


def default_data_dir() -> Path:
    import platformdirs  # only when no data directory is given: every CLI command imports this module

    return Path(platformdirs.user_data_dir("limen", appauthor=False))


class Settings(BaseSettings):
    """Validated Limen settings; see the README for every key."""

    model_config = SettingsConfigDict(env_prefix="LIMEN_", extra="forbid")

    data_dir: Path = Field(default_factory=default_data_dir)
    models_dir: Path = Field(default_factory=lambda data: data["data_dir"] / "models")  # imported model weights
    device_id: str = "limen-lock"
    keystore: KeyStoreKind = KeyStoreKind.SOFTWARE
    pkcs11_module: str = "/usr/lib/softhsm/libsofthsm2.so"
    pkcs11_token_label: str = "limen"  # noqa: S105 - a label, not a secret
    pkcs11_pin: SecretStr | None = None  # never defaulted; required for the PKCS#11 store; hidden in repr
    embed_backend: EmbedBackend = EmbedBackend.AUTO
    fragments_n: int = Field(default=1, ge=1, le=16)
    fragments_k: int = Field(default=1, ge=1, le=16)
    fragment_dirs: list[Path] = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    allowed_hosts: list[str] = Field(default_factory=list)  # Host names the service answers; [] = bind host + loopback
    trusted_proxies: list[str] = Field(default_factory=list)  # peers whose X-Forwarded-For is believed; [] = none
    api_token_days: int = Field(default=30, ge=1, le=365)  # default lifetime of a new API token
    alert_urls: list[str] = Field(default_factory=list)
    finger_matching: FingerMatching = FingerMatching.HOST  # where a sensor's finger is matched (docs/finger.md)
    door: DoorKind = DoorKind.SIMULATED  # the actuator: simulated (demos, tests) or gpio (relay + switches)
    door_relay_pin: int | None = Field(default=None, ge=0, le=63)  # BCM pins of the GPIO door; relay, door
    door_contact_pin: int | None = Field(default=None, ge=0, le=63)  # contact and key switch are required …
    door_key_pin: int | None = Field(default=None, ge=0, le=63)
    door_bolt_pin: int | None = Field(default=None, ge=0, le=63)  # … the bolt switch is optional (jams)
    tamper_sources: list[str] = Field(default_factory=list)  # "case:17", "escutcheon:22", "shock:27" (BCM)
    tamper_supply: str | None = None  # supply-voltage tamper source: "mcp3008:CHANNEL" or "file:/sys/…/in_voltage0_raw"
    tamper_supply_scale: float | None = Field(default=None, gt=0)  # supply volts per unit read (board's divider)
    tamper_watchdog: list[str] = Field(default_factory=list)  # "NAME:/run/limen/NAME.beat": heartbeat files
    allow_face_alone_rgb: bool = False  # owner's risk: an RGB-only face opens alone (docs/access.md)
    kiosk_challenge: bool = False  # RGB-only camera: the kiosk asks a random head-move sequence (docs/pad.md)
    link_cloud_may_lock: bool = False  # unsigned lock / lockdown over the link: cloud, Home Assistant (never unlock)
    link_broker: str | None = None  # the fleet MQTT broker, "host:port" (TLS 1.3, mutual X.509; docs/cloud.md)
    homeassistant: bool = False  # `limen serve` also publishes Home Assistant MQTT discovery on link_broker

    @field_validator("tamper_sources")
    @classmethod
    def _tamper_sources(cls, v: list[str]) -> list[str]:
        for item in v:
            kind, _, pin = item.partition(":")
            if kind not in TAMPER_SOURCE_KINDS or not pin.isdigit():
                raise ValueError(f"{item!r}: expected KIND:PIN with KIND one of {', '.join(TAMPER_SOURCE_KINDS)}")
        return v

    @field_validator("tamper_supply")
    @classmethod
    def _tamper_supply(cls, v: str | None) -> str | None:
        if v is None:
            return v
        kind, _, where = v.partition(":")
        if not (kind == "mcp3008" and where.isdigit() and int(where) < 8) and not (kind == "file" and where):
            raise ValueError(f"{v!r}: expected mcp3008:CHANNEL (0-7) or file:PATH")
        return v

    @field_validator("tamper_watchdog")
    @classmethod
    def _tamper_watchdog(cls, v: list[str]) -> list[str]:
        names = [item.partition(":")[0] for item in v]
        for item in v:
            name, _, path = item.partition(":")
            if not name.isidentifier() or not path.startswith("/"):
                raise ValueError(f"{item!r}: expected NAME:/absolute/heartbeat/file")
        if len(set(names)) != len(names):
            raise ValueError("each watched process is named once")
        return v

    @model_validator(mode="after")
    def _supply_scale(self) -> Settings:
        if self.tamper_supply is not None and self.tamper_supply_scale is None:
            raise ValueError("tamper_supply needs tamper_supply_scale (supply volts per unit read: the divider)")
        return self

    @model_validator(mode="after")
    def _gpio_door_pins(self) -> Settings:
        if self.door is DoorKind.GPIO and None in (self.door_relay_pin, self.door_contact_pin, self.door_key_pin):
            raise ValueError("door = gpio needs door_relay_pin, door_contact_pin and door_key_pin")
        return self

    @model_validator(mode="after")
    def _homeassistant_broker(self) -> Settings:
        if self.homeassistant and not self.link_broker:
            raise ValueError("homeassistant = true needs link_broker (the MQTT broker Home Assistant reads)")
        return self

    @field_validator("device_id")
    @classmethod
    def _printable(cls, v: str) -> str:
        if not v or not v.isprintable() or len(v) > 64:
            raise ValueError("must be 1-64 printable characters")
        return v

    @model_validator(mode="after")
    def _linked_device_id(self) -> Settings:
        # with a broker, the id is the lock's MQTT topics and its certificate's CN (`limen.link.pki.check_lock_id`,
        # the same rule); without one a lock keeps the id it had (its audit checkpoints and witness carry it)
        v = self.device_id
        if self.link_broker and (not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", v) or v in (".", "..", "limen-cloud",
                                                                                      "homeassistant")):
            raise ValueError("device_id must be 1-64 letters, digits, '.', '_' or '-' (and not a fleet service's "
                             "name) with link_broker set")
        return self

    @property
    def db_path(self) -> Path:
        return self.data_dir / "limen.db"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"


def load_settings(data_dir: Path | None = None, config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from file, environment and overrides; raise `ConfigError` on anything invalid."""
    base = Path(os.environ.get("LIMEN_DATA_DIR") or data_dir or default_data_dir())
    if data_dir is not None:
        base = data_dir
    path = config_file or Path(os.environ.get("LIMEN_CONFIG", base / "limen.toml"))
    file_values: dict[str, Any] = {}
    if path.is_file():
        try:
            file_values = tomllib.loads(path.read_text(encoding="utf-8")).get("limen", {})
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read settings ({exc})") from exc
    env_keys = {k[len("LIMEN_") :].lower() for k in os.environ if k.startswith("LIMEN_")}
    values = {k: v for k, v in file_values.items() if k not in env_keys}
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["data_dir"] = base
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from exc
    ensure_data_dir(settings.data_dir)
    return settings


def ensure_data_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create data directory ({exc.strerror})") from exc
    if not os.access(path, os.W_OK):
        raise ConfigError(f"{path}: data directory is not writable")
    if path.stat().st_mode & 0o077:
        try:  # the lock's secrets live here: nobody but its owner may even list it
            path.chmod(0o700)
        except OSError as exc:
            raise ConfigError(f"{path}: data directory is open to other users and cannot be restricted") from exc
