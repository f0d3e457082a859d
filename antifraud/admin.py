import json
from datetime import timedelta

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from antifraud import services
from antifraud.addresses import blocklist_forget
from antifraud.models import AuditEntry, Ban, BlockedAddress, Decision, Flag, HeldAction, Review, Rule
from antifraud.rules import RULES
from scores.admin import ReadOnlyAdmin


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
        for field in Ban._meta.concrete_fields:  # the admin logs and shows the ban created
            setattr(obj, field.attname, getattr(created, field.attname))

    @admin.display(boolean=True)
    def in_force(self, ban):
        return ban.lifted_at is None and ban.ends_at > timezone.now()

    @admin.action(description="Lift: the player may score again and returns to the rankings")
    def lift(self, request, queryset):
        for ban in queryset.filter(lifted_at__isnull=True):
            services.ban_lift(ban=ban, by=request.user)


# --- the moderation console -----------------------------------------------------------------


class RecordsAdmin(admin.ModelAdmin):
    """Rows the services create and moderators act on: no adding or deleting by hand."""

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"

    def lookups(self, request, model_admin):
        return [
            ("1h", "last hour"),
            ("24h", "last 24 hours"),
            ("7d", "last 7 days"),
            ("old", "older than 7 days"),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        spans = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
        if self.value() in spans:
            return queryset.filter(created_at__gte=now - spans[self.value()])
        if self.value() == "old":
            return queryset.filter(created_at__lt=now - spans["7d"])
        return queryset


class StatusFilter(admin.SimpleListFilter):
    """The queue opens on what needs a decision: open flags, unless asked otherwise."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [*Flag.STATUSES, ("all", "all")]

    def choices(self, changelist):
        for value, label in self.lookup_choices:
            yield {
                "selected": (self.value() or Flag.OPEN) == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value() or Flag.OPEN
        return queryset if value == "all" else queryset.filter(status=value)


def _pretty(value) -> str:
    return format_html(
        "<pre style='white-space: pre-wrap; max-height: 30em; overflow: auto'>{}</pre>",
        json.dumps(value, indent=2),
    )


@admin.register(Flag)
class FlagAdmin(RecordsAdmin):
    """The review queue: open flags first; the page shows the evidence and the player's history."""

    list_display = ("created_at", "rule", "severity", "status", "user", "client_ip", "summary")
    list_filter = (StatusFilter, "rule", "severity", AgeFilter)
    search_fields = ("user__username", "client_ip", "summary")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    actions = ["dismiss", "confirm_and_revert", "confirm_without_revert"]
    readonly_fields = (
        "rule",
        "severity",
        "status",
        "user",
        "client_ip",
        "threshold",
        "observed",
        "summary",
        "evidence_shown",
        "recent_history",
        "decisions_shown",
        "created_at",
        "resolved_at",
        "resolved_by",
    )
    fields = readonly_fields + ("verdict_note",)

    @admin.display(description="evidence")
    def evidence_shown(self, flag):
        return _pretty(flag.evidence)

    @admin.display(description="the player's recent history (newest first)")
    def recent_history(self, flag):
        from scores.models import ScoreHistory

        if not flag.user_id:
            return "-"
        rows = ScoreHistory.objects.filter(user_id=flag.user_id).order_by("-created_at")[:50]
        return format_html(
            "<table><tr><th>time</th><th>action</th><th>type</th><th>points</th><th>address</th><th>voided</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        row.created_at.isoformat(),
                        row.action_id,
                        row.action_type,
                        row.points,
                        row.client_ip or "",
                        row.voided_at or "",
                    )
                    for row in rows
                ),
            ),
        )

    @admin.display(description="decisions")
    def decisions_shown(self, flag):
        return _pretty(
            [
                {
                    "action_id": d.action_id,
                    "outcome": d.outcome,
                    "mode": d.mode,
                    "observed": d.observed,
                    "verdict": d.verdict,
                }
                for d in flag.decisions.all()[:100]
            ]
        )

    @admin.action(description="Dismiss: a false positive (ends a review it opened; held actions count)")
    def dismiss(self, request, queryset):
        done = sum(services.flag_dismiss(flag=flag, by=request.user) for flag in queryset)
        self.message_user(request, f"{done} flag(s) dismissed.")

    @admin.action(description="Confirm fraud and revert the flagged actions' points")
    def confirm_and_revert(self, request, queryset):
        points = sum(services.flag_confirm(flag=flag, by=request.user, revert=True) for flag in queryset)
        self.message_user(request, f"Confirmed; {points} point(s) reverted, board updated.")

    @admin.action(description="Confirm fraud without reverting points")
    def confirm_without_revert(self, request, queryset):
        for flag in queryset:
            services.flag_confirm(flag=flag, by=request.user, revert=False)
        self.message_user(request, "Confirmed.")

    def save_model(self, request, obj, form, change):
        # Only the note is editable; the verdicts go through the actions (and the audit log).
        Flag.objects.filter(pk=obj.pk).update(verdict_note=obj.verdict_note)


@admin.register(HeldAction)
class HeldActionAdmin(RecordsAdmin):
    list_display = ("created_at", "user", "action_id", "action_type", "points", "client_ip", "status")
    list_filter = ("status", AgeFilter)
    search_fields = ("user__username", "action_id", "client_ip")
    actions = ["release", "reject"]
    readonly_fields = [field.name for field in HeldAction._meta.fields]

    @admin.action(description="Release: count the points")
    def release(self, request, queryset):
        done = sum(services.held_release(held=held, by=request.user) for held in queryset)
        self.message_user(request, f"{done} action(s) released and counted.")

    @admin.action(description="Reject: never count them")
    def reject(self, request, queryset):
        done = sum(services.held_reject(held=held, by=request.user) for held in queryset)
        self.message_user(request, f"{done} action(s) rejected.")


@admin.register(Review)
class ReviewAdmin(RecordsAdmin):
    list_display = ("user", "opened_at", "reason", "closed_at", "closed_by")
    list_filter = (("closed_at", admin.EmptyFieldListFilter),)
    search_fields = ("user__username",)
    actions = ["close_and_release", "close_and_reject"]
    readonly_fields = [field.name for field in Review._meta.fields]

    @admin.action(description="End the review and count the held actions")
    def close_and_release(self, request, queryset):
        done = sum(services.review_close(review=review, by=request.user, release=True) for review in queryset)
        self.message_user(request, f"Review(s) ended; {done} held action(s) counted.")

    @admin.action(description="End the review and reject the held actions")
    def close_and_reject(self, request, queryset):
        done = sum(
            services.review_close(review=review, by=request.user, release=False) for review in queryset
        )
        self.message_user(request, f"Review(s) ended; {done} held action(s) rejected.")


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "rule",
        "mode",
        "outcome",
        "user",
        "action_id",
        "client_ip",
        "observed",
        "threshold",
        "verdict",
    )
    list_filter = ("rule", "mode", "outcome", "verdict", AgeFilter)
    search_fields = ("user__username", "action_id", "client_ip")
    readonly_fields = [field.name for field in Decision._meta.fields]


@admin.register(Rule)
class RuleAdmin(RecordsAdmin):
    """The feature flags of anti-fraud: each rule off, in shadow mode or enforced."""

    list_display = ("code", "mode", "threshold", "effective_threshold", "description")
    list_editable = ("mode", "threshold")
    readonly_fields = ("code", "description", "updated_at")

    def get_queryset(self, request):
        for code, spec in RULES.items():
            Rule.objects.get_or_create(code=code, defaults={"description": spec.description})
        return super().get_queryset(request)

    @admin.display(description="threshold in force")
    def effective_threshold(self, rule):
        from antifraud.rules import RuleState

        return RuleState(rule.code, rule.mode, rule.threshold).threshold if rule.code in RULES else "-"

    def save_model(self, request, obj, form, change):
        services.rule_mode_set(code=obj.code, mode=obj.mode, threshold=obj.threshold, by=request.user)


@admin.register(BlockedAddress)
class BlockedAddressAdmin(admin.ModelAdmin):
    list_display = ("network", "reason", "created_at", "created_by", "expires_at")
    search_fields = ("network", "reason")
    fields = ("network", "reason", "expires_at")

    def save_model(self, request, obj, form, change):
        before = None
        if change:
            old = BlockedAddress.objects.get(pk=obj.pk)
            before = {"network": old.network, "reason": old.reason, "expires_at": str(old.expires_at)}
        else:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        services.audit_record(
            actor=request.user,
            action="blocklist.change" if change else "blocklist.add",
            target=f"ip:{obj.network}",
            before=before,
            after={"network": obj.network, "reason": obj.reason, "expires_at": str(obj.expires_at)},
        )
        blocklist_forget()

    def delete_model(self, request, obj):
        services.audit_record(
            actor=request.user,
            action="blocklist.remove",
            target=f"ip:{obj.network}",
            before={"network": obj.network, "reason": obj.reason},
        )
        super().delete_model(request, obj)
        blocklist_forget()

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Append-only: read here, written only by the services."""

    list_display = ("created_at", "actor_name", "action", "target")
    list_filter = ("action", AgeFilter)
    search_fields = ("actor_name", "action", "target")
    readonly_fields = ("created_at", "actor", "actor_name", "action", "target", "before_shown", "after_shown")
    fields = readonly_fields

    @admin.display(description="before")
    def before_shown(self, entry):
        return _pretty(entry.before)

    @admin.display(description="after")
    def after_shown(self, entry):
        return _pretty(entry.after)
