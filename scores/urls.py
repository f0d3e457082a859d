from django.urls import path

from scores.apis import ScoreBatchApi, ScoreSubmitApi

urlpatterns = [
    path("scores", ScoreSubmitApi.as_view(), name="score-submit"),
    path("scores/batch", ScoreBatchApi.as_view(), name="score-batch"),
]
