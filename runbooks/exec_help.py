"""The help text of ``manage.py relay_exec``: its forms, its output and its exit codes."""

EPILOG = """\
One machine: relay_exec MACHINE [--ssh USER@HOST:PORT] -- CMD runs CMD on one of MACHINE's relays (or over
SSH from it), streams its stdout and stderr, and exits with CMD's exit code (124 on timeout, 130 if it was
cancelled). If no relay of MACHINE is online it queues nothing and exits 69, unless --queue-if-offline.

Fleet: relay_exec --selector "env=prod,role in (web,api)" -- CMD, or --target NAME (repeatable), makes a
batch as POST /api/v1/batches/ does: one copy per SSH target (or, with --relays, per machine of a relay the
selector picks, run locally there). Every output line is prefixed "NAME | " (stderr lines on stderr); at the
end a summary goes to stderr. Put the command after "--".

Templates: relay_exec --template NAME -p key=value [-p ...] [--selector S] launches a job template as
POST /api/v1/templates/{id}/launch/ does (--selector narrows the template's own), follows it as a batch
and exits as below.

Exit codes with --selector/--target/--template: 0 every target completed with exit code 0; 1 some run failed (non-zero
exit, error), timed out or was cancelled; 69 none of those, but some copies were never delivered (no relay
online). Either form: 2 usage error (bad option, malformed selector, a selector or target name that matches
nothing); 130 interrupted by Ctrl-C, after cancelling the command(s) it queued. With --as USER (or --user) it acts
with that operator's permissions, as the API would, and records them as the creator; without it, as the operator
RELAYHUB_OS_USER_MAP maps your OS user to, else with full rights and no creator. The audit trail records the OS
user either way."""
