from django.urls import path

from scores.apis import ScoreSubmitApi

urlpatterns = [path("scores", ScoreSubmitApi.as_view(), name="score-submit")]
