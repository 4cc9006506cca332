from django.apps import AppConfig


class AgentUpdatesConfig(AppConfig):
    name = "agentupdates"
    verbose_name = "Agent updates"
    default_auto_field = "django.db.models.BigAutoField"
