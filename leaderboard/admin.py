from django.contrib import admin, messages

from leaderboard.models import Board, BoardArchive, BoardStanding
from scores.admin import ReadOnlyAdmin


@admin.register(Board)
class BoardAdmin(admin.ModelAdmin):
    list_display = ("code", "title", "operator", "order", "window", "time_zone", "tie_policy", "enabled")
    list_filter = ("window", "operator", "enabled")
    search_fields = ("code", "title")
    readonly_fields = ("created_at", "updated_at")
    actions = ["rebuild_from_ledger"]

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "code") if obj is not None else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return obj is None or not obj.is_global

    def save_model(self, request, obj, form, change):
        """Through the board service: audited, and the board refilled from the ledger."""
        from leaderboard.board_services import board_define

        data = (
            {field: form.cleaned_data[field] for field in form.changed_data} if change else form.cleaned_data
        )
        board_define(data=dict(data), instance=obj if change else None, by=request.user)

    @admin.action(description="Rebuild the selected boards from the ledger")
    def rebuild_from_ledger(self, request, queryset):
        from leaderboard.board_services import boards_rebuild

        sizes = boards_rebuild(codes=list(queryset.values_list("code", flat=True)))
        self.message_user(request, f"Rebuilt {len(sizes)} board periods.", messages.SUCCESS)


@admin.register(BoardArchive)
class BoardArchiveAdmin(ReadOnlyAdmin):
    list_display = ("board", "period", "players", "archived_at")
    list_filter = ("board",)


@admin.register(BoardStanding)
class BoardStandingAdmin(ReadOnlyAdmin):
    list_display = ("board", "period", "rank", "user", "value", "reached_at")
    list_filter = ("board", "period")
    raw_id_fields = ("user",)
