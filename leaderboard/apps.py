from django.apps import AppConfig


class LeaderboardConfig(AppConfig):
    name = "leaderboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from leaderboard import signals  # noqa: F401  connects the receivers
        from leaderboard.services import leaderboard_on_redis_recovered
        from scoreboard_project.redis import breaker_on_recover

        breaker_on_recover(leaderboard_on_redis_recovered)
