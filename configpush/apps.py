from django.apps import AppConfig


class ConfigpushConfig(AppConfig):
    name = "configpush"
    verbose_name = "Config pushes"
