"""Launching a template: its parameters rendered as environment variables, then an ordinary batch.

Where it runs is the template's selector, narrowed (never widened) by the launch's own. The
launcher needs ``launch_template`` on the template and nothing on the relays: the template's
author chose what runs and where.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework import exceptions, serializers

from assignments.labels import LabelError, Selector, parse_selector
from audit import trail
from audit.models import Action
from assignments.models import RelayAssignment
from commands import approvals, batches, run_options
from commands.choices import TargetType
from fleet import selection
from fleet.models import SSHTarget
from runbooks import access, params
from runbooks.models import JobTemplate, Launch, TargetKind


def narrowing_or_400(text: str) -> Selector | None:
    if not text.strip():
        return None
    try:
        return parse_selector(text)
    except LabelError as exc:
        raise serializers.ValidationError({"selector": [str(exc)]}) from None


def destinations(template: JobTemplate, narrowing: Selector | None) -> list[dict]:
    """Where the template runs: what its selector picks among enabled relays or SSH targets, and the narrowing does."""
    chosen = parse_selector(template.selector)
    if template.target_kind == TargetKind.SSH_TARGETS:
        rows = SSHTarget.objects.filter(enabled=True).prefetch_related("relays__status").order_by("name")
        targets = [t for t in chosen.filter(rows) if narrowing is None or narrowing.matches(t.labels)]
        return [{"machine_id": selection.machine_for(target, None, may_run=lambda _: True), "name": target.name,
                 "target_host": target.host, "target_port": target.port, "target_username": target.username}
                for target in targets]
    rows = RelayAssignment.objects.filter(enabled=True).order_by("machine_id", "name")
    relays = [r for r in chosen.filter(rows) if narrowing is None or narrowing.matches(r.labels)]
    return batches.machine_destinations([relay.machine_id for relay in relays])


def command_fields(template: JobTemplate, rendered: params.Rendered) -> dict[str, Any]:
    """The batch's command and how it runs, from the template and the rendered parameters."""
    fields: dict[str, Any] = {
        "target_type": TargetType.SSH if template.target_kind == TargetKind.SSH_TARGETS else TargetType.LOCAL,
        "timeout_ms": template.timeout_ms, "priority": template.priority,
        "working_directory": template.working_directory, "run_as": template.run_as,
        "environment": {**template.environment, **rendered.environment},
        "secret_environment": rendered.secret_environment,
    }
    if template.script:
        slug = re.sub(r"[^A-Za-z0-9._+-]+", "-", template.name).strip("-")[:100] or "script"
        fields.update(command=f"{template.interpreter} {slug}", script=template.script,
                      interpreter=template.interpreter)
    else:
        fields["command"] = template.command
    return fields


ACTING_USER = object()


def approval_need(template: JobTemplate) -> approvals.Need | None:
    """A template that requires approval holds its launches until someone with approve_template approves."""
    if not template.requires_approval:
        return None
    return approvals.Need(reasons=[f"template {template.name!r} requires approval"], approver_object=template,
                          approver_permission=access.APPROVE)


def launch(template: JobTemplate, user, values: Any, *, narrowing: str = "", queue_if_offline: bool = False,
           created_by: Any = ACTING_USER) -> Launch:
    """A batch running the template with these parameter values; recorded as launched by ``created_by``
    (``user`` unless told otherwise; None for ``manage.py relay_exec`` acting for nobody in particular). DRF errors: 400 for values or selectors, 403 without launch_template."""
    if not access.may_launch(user, template):
        raise exceptions.PermissionDenied(f"you may not launch the template {template.name!r}")
    try:
        rendered = params.render(template.parameters, values)
    except ValidationError as exc:
        raise serializers.ValidationError(exc.message_dict) from None
    found = destinations(template, narrowing_or_400(narrowing))
    if not found:
        raise serializers.ValidationError({"selector": [
            f"the template's selector {template.selector!r}" + (f" narrowed by {narrowing!r}" if narrowing else "")
            + " matches nothing enabled"]})
    fields = command_fields(template, rendered)
    run_options.require_support(dict.fromkeys(d["machine_id"] for d in found), fields)
    creator = user if created_by is ACTING_USER else created_by
    with transaction.atomic():
        batch = batches.create(
            destinations=found, created_by=creator, selector=template.selector,
            max_concurrency=template.max_concurrency or None, max_errors=template.max_errors or None,
            queue_if_offline=queue_if_offline, approval=approval_need(template), **fields)
        made = Launch.objects.create(template=template, batch=batch, parameters=rendered.shown,
                                     selector=narrowing, launched_by=creator)
        trail.record(Action.TEMPLATE_LAUNCH, actor=creator, obj=template,
                     detail={"batch": batch.pk, "targets": len(found), "narrowed_by": narrowing,
                             "parameters": rendered.shown})  # secret parameters masked
        return made
