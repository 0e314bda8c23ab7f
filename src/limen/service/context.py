"""`ServiceContext`: the parts one running service shares between its routes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi.templating import Jinja2Templates

from limen import thresholds as T
from limen.clock import Clock
from limen.config import Settings
from limen.runtime import Runtime
from limen.service.accounts import Accounts
from limen.service.alerting import AlarmDelivery
from limen.service.lockservice import LockService
from limen.service.ratelimit import RateLimiter

HERE = Path(__file__).parent


def _templates() -> Jinja2Templates:
    from limen.service import i18n

    templates = Jinja2Templates(directory=str(HERE / "templates"))
    i18n.install(templates.env)  # English and Simplified Chinese (service/locale)
    return templates


@dataclass
class ServiceContext:
    settings: Settings
    runtime: Runtime
    lock: LockService
    accounts: Accounts
    clock: Clock
    setup_token: str | None = None  # in memory only, for the console line; stored hashed
    warm_started: bool = False  # models are warmed once per service, in the background
    templates: Jinja2Templates = field(default_factory=lambda: _templates())
    login_limiter: RateLimiter = field(init=False)
    unlock_limiter: RateLimiter = field(init=False)
    remote_limiter: RateLimiter = field(init=False)  # keyed by owner account, not address
    alarms: AlarmDelivery = field(init=False)  # alarm channels (limen.toml + console) and their delivery

    def __post_init__(self) -> None:
        self.login_limiter = RateLimiter(T.SERVICE_LOGIN_RATE_PER_MIN, T.SERVICE_LOGIN_BURST,
                                         T.SERVICE_LOGIN_GLOBAL_PER_MIN, self.clock)
        self.unlock_limiter = RateLimiter(T.SERVICE_UNLOCK_RATE_PER_MIN, T.SERVICE_UNLOCK_BURST,
                                          T.SERVICE_UNLOCK_GLOBAL_PER_MIN, self.clock)
        self.remote_limiter = RateLimiter(T.SERVICE_REMOTE_UNLOCK_PER_MIN, T.SERVICE_REMOTE_UNLOCK_BURST,
                                          T.SERVICE_REMOTE_UNLOCK_PER_MIN, self.clock)
        self.alarms = AlarmDelivery(self.settings, self.runtime.audit, self.clock, self.lock.zone)

    def setup_url(self) -> str | None:
        if self.setup_token is None:
            return None
        host = self.settings.host if self.settings.host not in ("0.0.0.0", "::") else "127.0.0.1"  # noqa: S104
        return f"http://{host}:{self.settings.port}/setup?token={self.setup_token}"
