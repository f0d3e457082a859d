from django.apps import AppConfig


class AntifraudConfig(AppConfig):
    name = "antifraud"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from antifraud.services import antifraud_on_redis_recovered
        from scoreboard_project.redis import breaker_on_recover

        breaker_on_recover(antifraud_on_redis_recovered)
