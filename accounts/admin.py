from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts import services
from accounts.models import LoginSession, ServiceAccount, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "is_active", "is_staff", "created_at")
    list_filter = ("is_active", "is_staff", "is_superuser")
    search_fields = ("username",)
    ordering = ("-created_at",)
    readonly_fields = ("created_at", "updated_at", "last_login")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Status", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("created_at", "updated_at", "last_login")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("username", "password1", "password2")}),)
    actions = ["deactivate", "activate"]

    def save_model(self, request, obj, form, change):
        was_active = (
            User.objects.filter(pk=obj.pk).values_list("is_active", flat=True).first() if change else True
        )
        super().save_model(request, obj, form, change)
        if change and was_active != obj.is_active:
            services.user_set_active(user=obj, active=obj.is_active)

    @admin.action(description="Deactivate: end their sessions and hide them from rankings")
    def deactivate(self, request, queryset):
        for user in queryset:
            services.user_set_active(user=user, active=False)

    @admin.action(description="Activate")
    def activate(self, request, queryset):
        for user in queryset:
            services.user_set_active(user=user, active=True)


@admin.register(LoginSession)
class LoginSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "created_at", "refreshed_at", "expires_at", "revoked_at", "revoked_reason")
    list_filter = ("revoked_reason",)
    search_fields = ("user__username", "id")
    readonly_fields = [field.name for field in LoginSession._meta.fields]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke: every token of the session stops working at once")
    def revoke(self, request, queryset):
        for session in queryset:
            services.session_revoke(sid=str(session.id), reason="admin")


@admin.register(ServiceAccount)
class ServiceAccountAdmin(admin.ModelAdmin):
    """Game servers that may submit batches (POST /api/scores/batch)."""

    list_display = ("name", "enabled", "description", "created_at")
    list_filter = ("enabled",)
    search_fields = ("name",)
    fields = ("name", "description", "enabled")
    actions = ["issue_token", "disable"]

    def get_readonly_fields(self, request, obj=None):
        return ("name",) if obj else ()

    def save_model(self, request, obj, form, change):
        if not change:
            created = services.service_account_create(name=obj.name, description=obj.description)
            obj.pk, obj.user_id = created.pk, created.user_id
            return
        was_enabled = ServiceAccount.objects.filter(pk=obj.pk).values_list("enabled", flat=True).first()
        super().save_model(request, obj, form, change)
        if was_enabled and not obj.enabled:
            services.service_account_set_enabled(account=obj, enabled=False)

    @admin.action(description="Issue a new token (shown once)")
    def issue_token(self, request, queryset):
        for account in queryset.select_related("user"):
            token = services.service_token_create(account=account)
            self.message_user(request, f"Token for {account.name} (copy it now, it is not stored): {token}")

    @admin.action(description="Disable: every token of the account stops working at once")
    def disable(self, request, queryset):
        for account in queryset:
            services.service_account_set_enabled(account=account, enabled=False)
