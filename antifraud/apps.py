from django.apps import AppConfig


class AntifraudConfig(AppConfig):
    name = "antifraud"
    default_auto_field = "django.db.models.BigAutoField"
