from django import forms
from django.contrib import admin
from django.utils import timezone

from antifraud import services
from antifraud.models import Ban


class BanForm(forms.ModelForm):
    minutes = forms.IntegerField(min_value=1, initial=60, help_text="Length of the ban.")

    class Meta:
        model = Ban
        fields = ("user", "reason")


@admin.register(Ban)
class BanAdmin(admin.ModelAdmin):
    """Bans, automatic and moderators'; a moderator bans here and lifts with the action."""

    list_display = ("user", "source", "level", "starts_at", "ends_at", "in_force", "reason", "lifted_at")
    list_filter = ("source", "starts_at")
    search_fields = ("user__username", "reason")
    autocomplete_fields = ("user",)
    actions = ["lift"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = BanForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Ban._meta.fields] if obj else ()

    def save_model(self, request, obj, form, change):
        if change:
            return
        created = services.ban_create(
            user_id=obj.user_id, seconds=form.cleaned_data["minutes"] * 60, reason=obj.reason, by=request.user
        )
        obj.pk = created.pk

    @admin.display(boolean=True)
    def in_force(self, ban):
        return ban.lifted_at is None and ban.ends_at > timezone.now()

    @admin.action(description="Lift: the player may score again and returns to the rankings")
    def lift(self, request, queryset):
        for ban in queryset.filter(lifted_at__isnull=True):
            services.ban_lift(ban=ban, by=request.user)
