from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from scoreboard_project.apis import HealthzApi, ReadyzApi
from scoreboard_project.metrics import metrics_view
from scoreboard_project.views import not_found

handler400 = "scoreboard_project.views.bad_request"
handler403 = "scoreboard_project.views.permission_denied"
handler404 = "scoreboard_project.views.not_found"
handler500 = "scoreboard_project.views.server_error"

urlpatterns = [
    path("admin", RedirectView.as_view(url="/admin/", permanent=True)),
    path("admin/", admin.site.urls),
    path("api/auth/", include("accounts.urls")),
    path("api/admin/", include("antifraud.urls")),
    path("api/", include("scores.urls")),
    path("api/", include("leaderboard.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("metrics", metrics_view, name="metrics"),
    path("healthz", HealthzApi.as_view(), name="healthz"),
    path("readyz", ReadyzApi.as_view(), name="readyz"),
    path("", include("leaderboard.page_urls")),
    re_path(r"^", not_found),
]
