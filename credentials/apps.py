from django.apps import AppConfig


class CredentialsConfig(AppConfig):
    name = "credentials"

    def ready(self) -> None:
        from commands import secrets
        from credentials import audit_hooks
        from credentials.models import SharedCredential

        audit_hooks.connect()

        def read(name: str) -> str | None:
            credential = SharedCredential.objects.filter(name=name).first()
            return None if credential is None else credential.get_value()

        secrets.register(read)
