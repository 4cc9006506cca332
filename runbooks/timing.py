"""When a template schedule is due: cron expressions in a time zone, intervals, and their slots.

A *slot* is the due time a run is for; one run per slot (``ScheduledRun``'s unique constraint).
Cron fields are parsed by Celery, which beat uses too, so both read an expression alike. A cron
expression may restrict the day of the month or the day of the week, not both: cron runs on
either, Celery only on both, and a schedule must not mean one thing here and another there.

Across daylight-saving changes the times are Celery's (and Python's ``fold=0``): a time the
clocks skip when they go forward is due an hour later by the new clock (02:30 becomes 03:30),
and a time that comes twice when they go back is due once, the first time.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from celery.schedules import ParseException, crontab
from cron_descriptor import Options, get_description

# How far back or ahead a cron expression is searched: four years and a day hold every February 29.
SEARCH_DAYS = 4 * 366 + 1


class TimingError(ValueError):
    pass


def zone(name: str) -> ZoneInfo:
    """The IANA time zone of that name; TimingError otherwise."""
    if not isinstance(name, str) or name not in available_timezones():
        raise TimingError(f"{name!r} is not an IANA time zone name such as Europe/Berlin or UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimingError(f"{name!r} is not an IANA time zone name such as Europe/Berlin or UTC") from None


def parse_cron(expression: str) -> crontab:
    """Five fields, minute hour day-of-month month day-of-week, as Celery reads them; TimingError otherwise."""
    fields = expression.split()
    if len(fields) != 5:
        raise TimingError("a cron expression has five fields: minute hour day-of-month month day-of-week")
    minute, hour, day_of_month, month, day_of_week = fields
    if day_of_month != "*" and day_of_week != "*":
        raise TimingError("restrict the day of the month or the day of the week, not both")
    try:
        return crontab(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month,
                       day_of_week=day_of_week)
    except (ParseException, ValueError, TypeError) as exc:
        raise TimingError(f"not a cron expression Celery reads: {exc}") from None


def _instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The instant ``day`` ``at`` on the wall clock means (see the module's note), in UTC."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(dt_timezone.utc)


def _day_matches(cron: crontab, day: date) -> bool:
    return day.month in cron.month_of_year and day.day in cron.day_of_month and \
        day.isoweekday() % 7 in cron.day_of_week


def _times(cron: crontab) -> list[time]:
    return [time(hour, minute) for hour in sorted(cron.hour) for minute in sorted(cron.minute)]


def cron_slot(cron: crontab, tz: ZoneInfo, at: datetime) -> datetime | None:
    """The latest due time at or before ``at`` (aware), in UTC; None if there is none within four years."""
    times = _times(cron)
    start = at.astimezone(tz).date() + timedelta(days=1)  # the day after: its first times may still be earlier
    for back in range(SEARCH_DAYS + 1):
        day = start - timedelta(days=back)
        if _day_matches(cron, day):
            due = [instant for instant in (_instant(day, t, tz) for t in times) if instant <= at]
            if due:
                return max(due)
    return None


def cron_next(cron: crontab, tz: ZoneInfo, after: datetime) -> datetime | None:
    """The earliest due time strictly after ``after``, in UTC; None if there is none within four years."""
    times = _times(cron)
    start = after.astimezone(tz).date() - timedelta(days=1)
    for ahead in range(SEARCH_DAYS + 1):
        day = start + timedelta(days=ahead)
        if _day_matches(cron, day):
            due = [instant for instant in (_instant(day, t, tz) for t in times) if instant > after]
            if due:
                return min(due)
    return None


def describe_cron(expression: str) -> str:
    """The expression in words ("At 02:30, only on Monday"), or the expression itself."""
    options = Options()
    options.use_24hour_time_format = True
    try:
        return get_description(expression, options)
    except Exception:  # noqa: BLE001 - cron-descriptor raises several kinds; the expression is shown instead
        return expression


def describe_interval(seconds: int) -> str:
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0 and seconds >= size:
            count = seconds // size
            return f"every {count} {unit}" + ("s" if unit == "day" and count != 1 else "")
    return f"every {seconds} s"
