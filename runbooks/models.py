"""Job templates: saved commands or scripts with typed parameters, launched as ordinary batches."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from assignments.labels import LabelError, parse_selector
from commands import batches
from commands.models import CommandBatch
from commands.run_options import Interpreter
from runbooks import params


class TargetKind(models.TextChoices):
    MACHINES = "machines", "Relays' machines (run locally there)"
    SSH_TARGETS = "ssh_targets", "SSH targets"


class JobTemplate(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    command = models.TextField(blank=True, help_text="One command line; or a script below.")
    script = models.TextField(blank=True, help_text="Run as a file by the interpreter, never pasted into sh -c.")
    interpreter = models.CharField(max_length=10, choices=Interpreter.choices, default=Interpreter.SH)
    parameters = models.JSONField(default=list, blank=True, help_text=(
        'A list of {"name", "type": string|integer|choice|boolean|secret, "label", "help", "required", "default", '
        '"pattern" (string), "min"/"max" (integer), "choices" (choice), "credential" (secret), "env"}. Each reaches '
        "the command as RELAYHUB_PARAM_<NAME>, and as env if given."))
    target_kind = models.CharField(max_length=12, choices=TargetKind.choices, default=TargetKind.MACHINES)
    selector = models.CharField(max_length=4096, help_text=(
        "Where it runs: a label selector over relays or SSH targets. A launch may narrow it, never widen it."))
    working_directory = models.CharField(max_length=4096, blank=True)
    run_as = models.CharField(max_length=32, blank=True)
    environment = models.JSONField(default=dict, blank=True, help_text="Fixed variables, as {NAME: value}.")
    timeout_ms = models.PositiveIntegerField(default=60_000, validators=[MinValueValidator(1),
                                                                         MaxValueValidator(24 * 3600 * 1000)])
    priority = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1), MaxValueValidator(10)])
    max_concurrency = models.CharField(max_length=8, blank=True, help_text="A number or a share such as 25%.")
    max_errors = models.CharField(max_length=8, blank=True, help_text="A number or a share such as 10%.")
    requires_approval = models.BooleanField(default=False, help_text=(
        "A launch waits until another user holding approve on this template (or on every relay) approves it."))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "job template"
        permissions = [("launch_template", "Can launch this template"),
                       ("approve_template", "Can approve launches of this template")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if bool(self.command.strip()) == bool(self.script):
            errors["command"] = "Give a command or a script, not both."
        try:
            params.check_definitions(self.parameters)
        except ValidationError as exc:
            errors["parameters"] = " ".join(exc.messages)
        try:
            if parse_selector(self.selector).is_empty:
                errors["selector"] = "A template needs a selector saying where it runs."
        except LabelError as exc:
            errors["selector"] = str(exc)
        for name in ("max_concurrency", "max_errors"):
            try:
                batches.check_limit(getattr(self, name) or None, name=name, minimum=1 if name == "max_concurrency"
                                    else 0)
            except batches.LimitError as exc:
                errors[name] = str(exc)
        if errors:
            raise ValidationError(errors)


class Launch(models.Model):
    """One launch of a template: the batch it made, and its parameters as shown (secrets masked)."""

    template = models.ForeignKey(JobTemplate, on_delete=models.PROTECT, related_name="launches")
    batch = models.OneToOneField(CommandBatch, on_delete=models.CASCADE, related_name="launch")
    parameters = models.JSONField(default=dict, blank=True)
    selector = models.CharField(max_length=4096, blank=True, help_text="The launch's narrowing, if any.")
    launched_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.template} #{self.pk}"
