from django.urls import path

from antifraud import apis

urlpatterns = [
    path("flags", apis.FlagListApi.as_view(), name="staff-flags"),
    path("flags/<int:flag_id>", apis.FlagDetailApi.as_view(), name="staff-flag"),
    path("flags/<int:flag_id>/dismiss", apis.FlagDismissApi.as_view(), name="staff-flag-dismiss"),
    path("flags/<int:flag_id>/confirm", apis.FlagConfirmApi.as_view(), name="staff-flag-confirm"),
    path("decisions", apis.DecisionListApi.as_view(), name="staff-decisions"),
    path("held", apis.HeldListApi.as_view(), name="staff-held"),
    path(
        "held/<int:held_id>/release", apis.HeldDecideApi.as_view(verdict="release"), name="staff-held-release"
    ),
    path("held/<int:held_id>/reject", apis.HeldDecideApi.as_view(verdict="reject"), name="staff-held-reject"),
    path("bans", apis.BanListApi.as_view(), name="staff-bans"),
    path("bans/<int:ban_id>/lift", apis.BanLiftApi.as_view(), name="staff-ban-lift"),
    path("users/<int:user_id>/revert", apis.ScoreRevertApi.as_view(), name="staff-revert"),
    path("rules", apis.RuleListApi.as_view(), name="staff-rules"),
    path("rules/<str:code>", apis.RuleSetApi.as_view(), name="staff-rule"),
]
