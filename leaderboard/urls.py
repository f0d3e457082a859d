from django.urls import path

from leaderboard.apis import ScoreboardApi

urlpatterns = [path("scoreboard", ScoreboardApi.as_view(), name="scoreboard")]
