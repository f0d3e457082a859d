from django.contrib import admin

from scores.models import ActionType, Score, ScoreHistory
from scores.selectors import action_rules_forget


@admin.register(ActionType)
class ActionTypeAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "min_points",
        "max_points",
        "enabled",
        "rate_per_window",
        "signature_required",
        "updated_at",
    )
    list_editable = ("min_points", "max_points", "enabled", "rate_per_window")
    search_fields = ("name",)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        action_rules_forget()


class ReadOnlyAdmin(admin.ModelAdmin):
    """Scores change only through the score service; the admin shows them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Score)
class ScoreAdmin(ReadOnlyAdmin):
    list_display = ("user", "total_score", "updated_at")
    search_fields = ("user__username",)
    ordering = ("-total_score", "updated_at")


@admin.register(ScoreHistory)
class ScoreHistoryAdmin(ReadOnlyAdmin):
    list_display = ("action_id", "user", "action_type", "points", "created_at")
    list_filter = ("action_type",)
    search_fields = ("user__username", "action_id")
    date_hierarchy = "created_at"
