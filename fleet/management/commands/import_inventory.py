"""``manage.py import_inventory FILE --relay NAME``: SSH targets from an Ansible inventory (INI or YAML)."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from assignments.labels import LabelError, parse_label_text
from assignments.models import RelayAssignment
from fleet.inventory import InventoryError, load
from fleet.models import SSHTarget

COMPARED = ("host", "port", "username", "labels")


class Command(BaseCommand):
    help = ("Add or update SSH targets from an Ansible inventory: hosts by name, groups as labels, ansible_host, "
            "ansible_port and ansible_user. Targets the file does not name are left alone.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--relay", action="append", required=True,
                            help="name or id of a relay that reaches these hosts (repeat for several)")
        parser.add_argument("--credential", default="", help="credential name the relays log in with")
        parser.add_argument("--label", action="append", default=[], help="extra key=value label for every host")
        parser.add_argument("--dry-run", action="store_true", help="report what would change, change nothing")

    def handle(self, *args, file: Path, relay: list[str], credential: str, label: list[str], dry_run: bool,
               **options) -> None:
        relays = [self._relay(ref) for ref in relay]
        try:
            hosts = load(file)
            extra = parse_label_text(",".join(label))
        except (OSError, InventoryError, LabelError) as exc:
            raise CommandError(f"{file}: {exc}") from None
        counts = {"added": 0, "changed": 0, "unchanged": 0}
        with transaction.atomic():
            for host in hosts:
                wanted = {"host": host.host, "port": host.port, "username": host.username,
                          "labels": {**host.labels, **extra}}
                outcome, detail = self._apply(host.name, wanted, relays, credential)
                counts[outcome] += 1
                if outcome != "unchanged":
                    self.stdout.write(f"{outcome} {host.name}{detail}")
            if dry_run:
                transaction.set_rollback(True)
        summary = ", ".join(f"{count} {word}" for word, count in counts.items())
        self.stdout.write(self.style.SUCCESS(f"{'would have: ' if dry_run else ''}{summary}"))

    def _relay(self, ref: str) -> RelayAssignment:
        rows = RelayAssignment.objects.filter(name=ref)
        try:
            rows = rows | RelayAssignment.objects.filter(pk=ref)
        except ValidationError:
            pass
        found = list(rows[:2])
        if len(found) != 1:
            raise CommandError(f"--relay {ref!r}: {'no' if not found else 'more than one'} relay has that name or id")
        return found[0]

    def _apply(self, name: str, wanted: dict, relays: list[RelayAssignment], credential: str) -> tuple[str, str]:
        target = SSHTarget.objects.filter(name=name).first()
        if target is None:
            target = SSHTarget(name=name, credential_name=credential, **wanted)
            self._save(target)
            target.relays.set(relays)
            return "added", f" ({target.username + '@' if target.username else ''}{target.address})"
        changes = [f"{field} {getattr(target, field)!r} -> {wanted[field]!r}" for field in COMPARED
                   if getattr(target, field) != wanted[field]]
        new_relays = [r for r in relays if not target.relays.filter(pk=r.pk).exists()]
        if credential and target.credential_name != credential:
            changes.append(f"credential {target.credential_name!r} -> {credential!r}")
            target.credential_name = credential
        if new_relays:
            changes.append("relays + " + ", ".join(r.name for r in new_relays))
        if not changes:
            return "unchanged", ""
        for field in COMPARED:
            setattr(target, field, wanted[field])
        self._save(target)
        target.relays.add(*new_relays)
        return "changed", ": " + "; ".join(changes)

    @staticmethod
    def _save(target: SSHTarget) -> None:
        try:
            target.full_clean(exclude=["relays"])
        except ValidationError as exc:
            raise CommandError(f"{target.name}: {'; '.join(exc.messages)}") from None
        target.save()
