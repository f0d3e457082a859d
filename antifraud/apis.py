"""Staff-only JSON endpoints for moderation (API.md section 6): the admin's queue as an API."""

from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from antifraud import serializers as out
from antifraud import services
from antifraud.models import Ban, Decision, Flag, HeldAction, Rule
from antifraud.rules import RULES
from scoreboard_project.errors import Forbidden, InvalidAction, NotFound
from scoreboard_project.openapi import error_headers, error_responses

STATUSES = (400, 401, 403, 404, 413)
ERRORS = error_responses(*STATUSES)
HEADERS = error_headers(*STATUSES)
PAGE = 100
AT = "2026-11-29T12:00:00.123456Z"
FLAG = {
    "id": 17,
    "rule": "velocity",
    "severity": "medium",
    "status": "open",
    "user_id": 42,
    "username": "ada",
    "client_ip": "198.51.100.7",
    "threshold": 100.0,
    "observed": 150.0,
    "summary": "150 points in one minute (threshold 100)",
    "evidence": {"window_seconds": 60, "action_ids": ["6f1c2c52-8f0e-4d8e-9a51-6f0b8d2f0a11"]},
    "created_at": AT,
    "resolved_at": None,
    "verdict_note": "",
}
DECISION = {
    "id": 7,
    "rule": "velocity",
    "mode": "enforce",
    "outcome": "flagged",
    "user_id": 42,
    "action_id": "6f1c2c52-8f0e-4d8e-9a51-6f0b8d2f0a11",
    "client_ip": "198.51.100.7",
    "threshold": 100.0,
    "observed": 150.0,
    "evidence": {"window_seconds": 60, "points_in_window": 150},
    "flag_id": 17,
    "created_at": AT,
    "verdict": "",
    "verdict_at": None,
}
HELD = {
    "id": 3,
    "user_id": 42,
    "action_id": "0b6a1f8e-3c2d-4e5f-8a9b-1c2d3e4f5a6b",
    "action_type": "quest",
    "points": 30,
    "client_ip": "198.51.100.7",
    "created_at": AT,
    "status": "held",
    "decided_at": None,
}
BAN = {
    "id": 5,
    "user_id": 42,
    "reason": "cheating",
    "source": "moderator",
    "level": 1,
    "starts_at": AT,
    "ends_at": "2026-11-29T13:00:00.123456Z",
    "lifted_at": None,
}
RULE = {
    "code": "velocity",
    "mode": "shadow",
    "threshold": 250.0,
    "effective_threshold": 250.0,
    "description": "Flag a player whose credited points in the last minute exceed the threshold.",
    "updated_at": AT,
}


def staff_schema(response, example, *, request=None, request_example=None, status: int = 200, **extra):
    """The schema of a staff endpoint: its answer and errors, with examples."""
    examples = [OpenApiExample("answer", value=example, response_only=True, status_codes=[str(status)])]
    if request is not None:
        examples.append(OpenApiExample("request", value=request_example, request_only=True))
    return extend_schema(
        tags=["staff"],
        request=request,
        responses={status: response, **ERRORS},
        parameters=[*extra.pop("parameters", []), *HEADERS],
        examples=examples,
        **extra,
    )


class IsStaff(BasePermission):
    """Active staff with the model permission the endpoint names (as in the admin); the
    token's user is loaded, since moderators' actions name them."""

    def has_permission(self, request, view) -> bool:
        from accounts.models import User

        if not (request.user and request.user.is_authenticated):
            return False  # 401 through DRF's NotAuthenticated
        user = User.objects.filter(pk=request.user.pk, is_active=True, is_staff=True).first()
        if user is None:
            raise Forbidden("Staff only.")
        needed = view.permissions.get(request.method)
        if needed and not user.has_perm(needed):
            raise Forbidden(f"This needs the permission {needed}.")
        request.user = user
        return True


class StaffApi(APIView):
    permission_classes = [IsStaff]
    permissions: dict[str, str] = {}  # method -> the Django permission it needs


def _valid(serializer_class, data):
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _page(queryset, offset: int) -> list:
    return list(queryset[offset : offset + PAGE])


class FlagListApi(StaffApi):
    permissions = {"GET": "antifraud.view_flag"}

    @staff_schema(out.FlagOutput(many=True), FLAG, parameters=[out.FlagQuery])
    def get(self, request):
        """The moderation queue: flags, newest first (100 per page), filtered."""
        query = _valid(out.FlagQuery, request.query_params.dict())
        flags = Flag.objects.select_related("user")
        for field in ("status", "rule", "severity"):
            if field in query:
                flags = flags.filter(**{field: query[field]})
        if query.get("q"):
            flags = flags.filter(
                Q(user__username__icontains=query["q"]) | Q(client_ip__startswith=query["q"])
            )
        rows = _page(flags, query["offset"])
        return Response(out.FlagOutput(rows, many=True).data)


class FlagDetailApi(StaffApi):
    permissions = {"GET": "antifraud.view_flag"}

    @staff_schema(out.FlagOutput, FLAG)
    def get(self, request, flag_id: int):
        return Response(out.FlagOutput(get_object_or_404(Flag, pk=flag_id)).data)


class FlagDismissApi(StaffApi):
    permissions = {"POST": "antifraud.change_flag"}

    @staff_schema(
        out.FlagOutput,
        {**FLAG, "status": "dismissed", "resolved_at": AT, "verdict_note": "a tournament"},
        request=out.VerdictInput,
        request_example={"note": "a tournament"},
    )
    def post(self, request, flag_id: int):
        """A false positive: closes the flag; a review it opened ends and held actions count."""
        flag = get_object_or_404(Flag, pk=flag_id)
        data = _valid(out.VerdictInput, request.data)
        if not services.flag_dismiss(flag=flag, by=request.user, note=data["note"]):
            raise InvalidAction(f"flag {flag.pk} is already {flag.status}")
        flag.refresh_from_db()
        return Response(out.FlagOutput(flag).data)


class FlagConfirmApi(StaffApi):
    permissions = {"POST": "antifraud.change_flag"}

    @staff_schema(
        out.ConfirmOutput,
        {
            "flag": {**FLAG, "status": "confirmed", "resolved_at": AT, "verdict_note": "macro"},
            "points_reverted": 150,
        },
        request=out.ConfirmInput,
        request_example={"note": "macro", "revert": True},
    )
    def post(self, request, flag_id: int):
        """Confirmed fraud: with `revert`, the flagged actions' points come off and the board
        is corrected; held actions are rejected."""
        flag = get_object_or_404(Flag, pk=flag_id)
        data = _valid(out.ConfirmInput, request.data)
        if flag.status not in (Flag.OPEN, Flag.SHADOW):
            raise InvalidAction(f"flag {flag.pk} is already {flag.status}")
        points = services.flag_confirm(flag=flag, by=request.user, note=data["note"], revert=data["revert"])
        flag.refresh_from_db()
        return Response({"flag": out.FlagOutput(flag).data, "points_reverted": points})


class DecisionListApi(StaffApi):
    permissions = {"GET": "antifraud.view_decision"}

    @staff_schema(out.DecisionOutput(many=True), DECISION, parameters=[out.DecisionQuery])
    def get(self, request):
        """Every stored decision of the rules, newest first (100 per page)."""
        query = _valid(out.DecisionQuery, request.query_params.dict())
        decisions = Decision.objects.all()
        for field in ("user_id", "rule", "action_id"):
            if field in query:
                decisions = decisions.filter(**{field: query[field]})
        rows = _page(decisions, query["offset"])
        return Response(out.DecisionOutput(rows, many=True).data)


class HeldListApi(StaffApi):
    permissions = {"GET": "antifraud.view_heldaction"}

    @staff_schema(out.HeldActionOutput(many=True), HELD, parameters=[out.HeldQuery])
    def get(self, request):
        """Actions held for review (by default those still waiting)."""
        query = _valid(out.HeldQuery, request.query_params.dict())
        rows = _page(HeldAction.objects.filter(status=query["status"]), query["offset"])
        return Response(out.HeldActionOutput(rows, many=True).data)


class HeldDecideApi(StaffApi):
    permissions = {"POST": "antifraud.change_heldaction"}
    verdict = ""

    @staff_schema(out.HeldActionOutput, {**HELD, "status": "released", "decided_at": AT}, request=None)
    def post(self, request, held_id: int):
        held = get_object_or_404(HeldAction, pk=held_id)
        decide = services.held_release if self.verdict == "release" else services.held_reject
        if not decide(held=held, by=request.user):
            raise InvalidAction(f"action {held.action_id} was already {held.status}")
        held.refresh_from_db()
        return Response(out.HeldActionOutput(held).data)


class BanListApi(StaffApi):
    permissions = {"GET": "antifraud.view_ban", "POST": "antifraud.add_ban"}

    @staff_schema(out.BanOutput(many=True), BAN, parameters=[out.BanQuery])
    def get(self, request):
        query = _valid(out.BanQuery, request.query_params.dict())
        bans = Ban.objects.all()
        if "user_id" in query:
            bans = bans.filter(user_id=query["user_id"])
        rows = _page(bans, query["offset"])
        return Response(out.BanOutput(rows, many=True).data)

    @staff_schema(
        out.BanOutput,
        BAN,
        request=out.BanInput,
        request_example={"user_id": 42, "minutes": 60, "reason": "cheating"},
        status=201,
    )
    def post(self, request):
        """Ban a player for `minutes`: 403 ACCOUNT_SUSPENDED, out of every ranking."""
        from accounts.models import User

        data = _valid(out.BanInput, request.data)
        if not User.objects.filter(pk=data["user_id"]).exists():
            raise NotFound(f"user {data['user_id']} does not exist")
        ban = services.ban_create(
            user_id=data["user_id"], seconds=data["minutes"] * 60, reason=data["reason"], by=request.user
        )
        return Response(out.BanOutput(ban).data, status=201)


class BanLiftApi(StaffApi):
    permissions = {"POST": "antifraud.change_ban"}

    @staff_schema(out.BanOutput, {**BAN, "lifted_at": AT}, request=None)
    def post(self, request, ban_id: int):
        ban = get_object_or_404(Ban, pk=ban_id)
        services.ban_lift(ban=ban, by=request.user)
        ban.refresh_from_db()
        return Response(out.BanOutput(ban).data)


class ScoreRevertApi(StaffApi):
    permissions = {"POST": "scores.change_score"}

    @staff_schema(
        out.RevertOutput,
        {"user_id": 42, "points_reverted": 150, "new_score": 1380},
        request=out.RevertInput,
        request_example={"action_ids": ["6f1c2c52-8f0e-4d8e-9a51-6f0b8d2f0a11"], "reason": "confirmed macro"},
    )
    def post(self, request, user_id: int):
        """Void a player's fraudulent actions and take their points off (board corrected)."""
        from accounts.models import User
        from scores.models import Score
        from scores.services import score_revert

        user = get_object_or_404(User, pk=user_id)
        data = _valid(out.RevertInput, request.data)
        points = score_revert(
            user_id=user.pk,
            action_ids=[str(action_id) for action_id in data["action_ids"]],
            by=request.user,
            reason=data["reason"] or "staff API",
        )
        score = Score.objects.filter(user=user).first()
        return Response(
            {"user_id": user.pk, "points_reverted": points, "new_score": score.total_score if score else 0}
        )


class RuleListApi(StaffApi):
    permissions = {"GET": "antifraud.view_rule"}

    @staff_schema(out.RuleOutput(many=True), RULE)
    def get(self, request):
        """Every rule with its mode and threshold."""
        for code, spec in RULES.items():
            Rule.objects.get_or_create(code=code, defaults={"description": spec.description})
        return Response(out.RuleOutput(Rule.objects.filter(code__in=RULES), many=True).data)


class RuleSetApi(StaffApi):
    permissions = {"PUT": "antifraud.change_rule"}

    @staff_schema(
        out.RuleOutput, RULE, request=out.RuleInput, request_example={"mode": "shadow", "threshold": 250}
    )
    def put(self, request, code: str):
        """Switch a rule off, to shadow mode or to enforce; `threshold` null: the setting's."""
        if code not in RULES:
            raise NotFound(f"no rule named {code!r}")
        data = _valid(out.RuleInput, request.data)
        rule = services.rule_mode_set(
            code=code, mode=data["mode"], threshold=data["threshold"], by=request.user
        )
        return Response(out.RuleOutput(rule).data)
