from django.urls import path

from leaderboard import apis

urlpatterns = [
    path("scoreboard", apis.ScoreboardApi.as_view(), name="scoreboard"),
    path("boards", apis.BoardListApi.as_view(), name="boards"),
    path("boards/<str:code>", apis.BoardDetailApi.as_view(), name="board"),
    path("boards/<str:code>/around-me", apis.BoardAroundApi.as_view(), name="board-around-me"),
    path("boards/<str:code>/players/<str:player>", apis.BoardPlayerApi.as_view(), name="board-player"),
    path("admin/boards", apis.BoardAdminListApi.as_view(), name="staff-boards"),
    path("admin/boards/<str:code>", apis.BoardAdminDetailApi.as_view(), name="staff-board"),
    path("admin/boards/<str:code>/rebuild", apis.BoardAdminRebuildApi.as_view(), name="staff-board-rebuild"),
]
