from django.urls import path

from accounts import apis

urlpatterns = [
    path("register", apis.RegisterApi.as_view(), name="auth-register"),
    path("token", apis.TokenObtainApi.as_view(), name="auth-token"),
    path("token/refresh", apis.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("logout", apis.LogoutApi.as_view(), name="auth-logout"),
    path("ws-ticket", apis.WsTicketApi.as_view(), name="auth-ws-ticket"),
]
