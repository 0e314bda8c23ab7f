"""`limen alerts test | list | deliver`: the alarm outbox and its channels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from limen.cli.common import STATE, gettext, output

if TYPE_CHECKING:
    from limen.config import Settings

alerts_app = typer.Typer(help="Alarms: test the channels, list and deliver the outbox.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")


def _with_console_channels(settings: Settings) -> Settings:
    """The settings with the channels added in the console (sealed beside the data) as well."""
    from limen.service.alerting import effective_urls

    return settings.model_copy(update={"alert_urls": effective_urls(settings)})


@alerts_app.command("test")
def test() -> None:
    """Raise a test alarm and deliver it now through every configured channel."""
    from limen.audit import open_audit, open_dispatcher, raise_alarm
    from limen.errors import ConfigError

    settings = _with_console_channels(STATE.settings)
    if not settings.alert_urls:
        raise ConfigError(gettext("no alarm channel configured (the console's Alarms page, limen.toml [limen] "
                            "alert_urls or LIMEN_ALERT_URLS)"))
    log = open_audit(settings)
    try:
        index = raise_alarm(log, "test", "info", "test alarm from `limen alerts test`", subject="test")
        dispatcher = open_dispatcher(settings, log)
        results = [r for r in dispatcher.deliver_due() if r.alarm == index]
        dispatcher.close()
    finally:
        log.close()
    data = [{"channel": r.channel, "delivered": r.delivered, "error": r.error} for r in results]
    def human() -> None:
        for r in results:
            state = gettext("delivered") if r.delivered else gettext("FAILED")
            typer.echo(f"{state:<8}  {r.channel}  {gettext(r.error or '')}")

    output({"alarm": index, "results": data}, human)
    failed = sum(not r.delivered for r in results)
    if failed:
        from limen.errors import AuditError

        raise AuditError(gettext("{failed} of {total} channels failed; the alarm stays queued and is retried").format(
            failed=failed, total=len(results)))


@alerts_app.command("list")
def list_(
    pending: Annotated[bool, typer.Option("--pending", help="Only undelivered.")] = False,
    n: Annotated[int, typer.Option("-n", help="How many (newest).", min=1)] = 50,
) -> None:
    """List queued and delivered alarm notifications."""
    from limen.audit import audit_db_path, open_audit
    from limen.audit.outbox import items
    from limen.db import connect

    open_audit(STATE.settings).close()  # creates / migrates the store if needed
    conn = connect(audit_db_path(STATE.settings))
    try:
        rows = [i.to_dict() for i in items(conn, pending, n)]
    finally:
        conn.close()

    def human() -> None:
        if not rows:
            typer.echo(gettext("(no alarms queued)"))
        for r in rows:
            typer.echo(f"{r['alarm']:>6}  {r['severity'] or '':<8} {r['rule'] or '':<28} {r['status']:<9} "
                       f"x{r['attempts']}  {r['channel']}  {r['last_error'] or ''}")

    output(rows, human)


@alerts_app.command("deliver")
def deliver() -> None:
    """One delivery pass over every due notification (for use without `limen serve`)."""
    from limen.audit import open_audit, open_dispatcher

    settings = _with_console_channels(STATE.settings)
    log = open_audit(settings)
    try:
        dispatcher = open_dispatcher(settings, log)
        results = dispatcher.deliver_due()
        stranded = dispatcher.pending_channels()
    finally:
        log.close()
    data = {"delivered": sum(r.delivered for r in results), "failed": sum(not r.delivered for r in results),
            "unconfigured_channels": stranded}
    line = gettext("delivered {delivered}, failed {failed}").format(delivered=data["delivered"], failed=data["failed"])
    if stranded:
        line += gettext("; waiting for removed channels: {channels}").format(channels=", ".join(stranded))
    output(data, line)
