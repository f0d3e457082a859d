from django.conf import settings
from django.db import models
from django.utils import timezone


class Ban(models.Model):
    """A temporary suspension: automatic (repeated rate-limit violations) or a moderator's.

    While it runs the player gets 403 ACCOUNT_SUSPENDED and appears in no ranking.
    """

    AUTOMATIC, MODERATOR = "automatic", "moderator"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bans")
    reason = models.CharField(max_length=200)
    source = models.CharField(max_length=20, choices=[(AUTOMATIC, "automatic"), (MODERATOR, "moderator")])
    level = models.PositiveSmallIntegerField(
        default=1, help_text="Step of the penalty ladder (automatic bans)."
    )
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    restored_at = models.DateTimeField(
        null=True, blank=True, help_text="When the player was put back into the rankings."
    )

    class Meta:
        db_table = "ban"
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["user", "ends_at"]), models.Index(fields=["restored_at", "ends_at"])]

    def __str__(self) -> str:
        return f"{self.user} until {self.ends_at:%Y-%m-%d %H:%M}"

    @property
    def in_force(self) -> bool:
        return self.lifted_at is None and self.ends_at > timezone.now()


class Rule(models.Model):
    """An anti-fraud rule's switch: off, shadow (record what it would do) or enforce.

    Thresholds default to the settings named in `threshold_setting`; a value here overrides.
    """

    OFF, SHADOW, ENFORCE = "off", "shadow", "enforce"
    MODES = [(OFF, "off"), (SHADOW, "shadow: record only"), (ENFORCE, "enforce")]

    code = models.CharField(max_length=40, primary_key=True)
    mode = models.CharField(max_length=10, choices=MODES, default=ENFORCE)
    threshold = models.FloatField(
        null=True, blank=True, help_text="Empty: the default from the settings (see the description)."
    )
    description = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "antifraud_rule"
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} ({self.mode})"


class Flag(models.Model):
    """A finding about a player (or an address): one line of the moderation queue."""

    OPEN, DISMISSED, CONFIRMED, SHADOW = "open", "dismissed", "confirmed", "shadow"
    STATUSES = [
        (OPEN, "open"),
        (DISMISSED, "dismissed: false positive"),
        (CONFIRMED, "confirmed fraud"),
        (SHADOW, "shadow: recorded only"),
    ]
    LOW, MEDIUM, HIGH = "low", "medium", "high"
    SEVERITIES = [(LOW, "low"), (MEDIUM, "medium"), (HIGH, "high")]

    # SET_NULL: deleting an account keeps the evidence (the flag names the user id in its audit).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="flags"
    )
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    rule = models.CharField(max_length=40, db_index=True)
    severity = models.CharField(max_length=10, choices=SEVERITIES, default=MEDIUM)
    status = models.CharField(max_length=10, choices=STATUSES, default=OPEN)
    threshold = models.FloatField()
    observed = models.FloatField()
    summary = models.CharField(max_length=300)
    evidence = models.JSONField(default=dict)
    # What makes two findings the same one: a rule run twice raises it once.
    fingerprint = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verdict_note = models.CharField(max_length=500, blank=True)

    class Meta:
        db_table = "antifraud_flag"
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["rule", "fingerprint"], name="flag_unique_finding")]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.rule}: {self.summary}"


class Decision(models.Model):
    """What a rule did to one action (or would have done, in shadow mode), and why.

    Kept for every action a rule refused, held or flagged, with the rule's threshold, the
    value observed and the evidence; the moderator's verdict is added later.
    """

    REFUSED, HELD, FLAGGED, BANNED = "refused", "held", "flagged", "banned"
    OUTCOMES = [(REFUSED, "refused"), (HELD, "held for review"), (FLAGGED, "flagged"), (BANNED, "banned")]
    UPHELD, OVERTURNED = "upheld", "overturned"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    action_id = models.CharField(max_length=36, blank=True, db_index=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    rule = models.CharField(max_length=40)
    mode = models.CharField(max_length=10, choices=Rule.MODES)
    outcome = models.CharField(max_length=10, choices=OUTCOMES)
    threshold = models.FloatField(null=True, blank=True)
    observed = models.FloatField(null=True, blank=True)
    evidence = models.JSONField(default=dict)
    flag = models.ForeignKey(Flag, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions")
    created_at = models.DateTimeField(default=timezone.now)
    verdict = models.CharField(
        max_length=10, blank=True, choices=[(UPHELD, "upheld"), (OVERTURNED, "overturned")]
    )
    verdict_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verdict_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "antifraud_decision"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "created_at"])]

    def __str__(self) -> str:
        shadow = " (shadow)" if self.mode == Rule.SHADOW else ""
        return f"{self.rule}: {self.outcome}{shadow}"


class Review(models.Model):
    """A player under manual review: their new actions are held until it is closed."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews")
    reason = models.CharField(max_length=300)
    flag = models.ForeignKey(Flag, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "antifraud_review"
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=models.Q(closed_at__isnull=True), name="review_one_open_per_user"
            )
        ]

    def __str__(self) -> str:
        return f"review of {self.user}"


class HeldAction(models.Model):
    """An action of a player under review: accepted (202) but not counted until released."""

    HELD, RELEASED, REJECTED = "held", "released", "rejected"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="held_actions")
    action_id = models.CharField(max_length=36, unique=True)
    action_type = models.CharField(max_length=50)
    points = models.IntegerField()
    request_hash = models.CharField(max_length=64)
    # Kept so that the released action is exactly the one submitted (same request digest).
    client_timestamp = models.DateTimeField(null=True, blank=True)
    signature = models.CharField(max_length=512, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(
        max_length=10,
        default=HELD,
        choices=[(HELD, "held"), (RELEASED, "released: counted"), (REJECTED, "rejected")],
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "antifraud_held_action"
        ordering = ["created_at"]
        indexes = [models.Index(fields=["user", "status"])]

    def __str__(self) -> str:
        return f"{self.action_id} ({self.points}, {self.status})"


class BlockedAddress(models.Model):
    """An address or network whose score updates are refused (rule `ip_blocklist`)."""

    network = models.CharField(max_length=50, unique=True, help_text="An address or a CIDR network.")
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: until removed.")

    class Meta:
        db_table = "antifraud_blocked_address"
        verbose_name_plural = "blocked addresses"

    def __str__(self) -> str:
        return self.network

    def clean(self) -> None:
        from ipaddress import ip_network

        from django.core.exceptions import ValidationError

        try:
            self.network = str(ip_network(self.network.strip(), strict=False))
        except ValueError:
            raise ValidationError({"network": "Enter an IP address or a CIDR network."}) from None


class AuditEntry(models.Model):
    """Append-only: every moderator action and security event, with before and after."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True, help_text="'system' for automatic events.")
    action = models.CharField(max_length=60, db_index=True)
    target = models.CharField(max_length=100)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "antifraud_audit"
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.target}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("The audit log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("The audit log is append-only.")
