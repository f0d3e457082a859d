"""Staff-only JSON endpoints for moderation (API.md section 6): the admin's queue as an API."""

from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from antifraud import serializers as out
from antifraud import services
from antifraud.models import Ban, Decision, Flag, HeldAction, Rule
from antifraud.rules import RULES
from scoreboard_project.errors import Forbidden, InvalidAction, NotFound
from scoreboard_project.openapi import error_responses

ERRORS = error_responses(400, 401, 403, 404, 413)
PAGE = 100


class IsStaff(BasePermission):
    """Active staff only; the token's user is loaded, since moderators' actions name them."""

    def has_permission(self, request, view) -> bool:
        from accounts.models import User

        if not (request.user and request.user.is_authenticated):
            return False  # 401 through DRF's NotAuthenticated
        user = User.objects.filter(pk=request.user.pk, is_active=True, is_staff=True).first()
        if user is None:
            raise Forbidden("Staff only.")
        request.user = user
        return True


class StaffApi(APIView):
    permission_classes = [IsStaff]


def _valid(serializer_class, data):
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _page(queryset, offset: int) -> list:
    return list(queryset[offset : offset + PAGE])


class FlagListApi(StaffApi):
    @extend_schema(
        tags=["staff"],
        parameters=[out.FlagQuery],
        responses={200: out.FlagOutput(many=True), **ERRORS},
    )
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
    @extend_schema(tags=["staff"], responses={200: out.FlagOutput, **ERRORS})
    def get(self, request, flag_id: int):
        return Response(out.FlagOutput(get_object_or_404(Flag, pk=flag_id)).data)


class FlagDismissApi(StaffApi):
    @extend_schema(tags=["staff"], request=out.VerdictInput, responses={200: out.FlagOutput, **ERRORS})
    def post(self, request, flag_id: int):
        """A false positive: closes the flag; a review it opened ends and held actions count."""
        flag = get_object_or_404(Flag, pk=flag_id)
        data = _valid(out.VerdictInput, request.data)
        if not services.flag_dismiss(flag=flag, by=request.user, note=data["note"]):
            raise InvalidAction(f"flag {flag.pk} is already {flag.status}")
        flag.refresh_from_db()
        return Response(out.FlagOutput(flag).data)


class FlagConfirmApi(StaffApi):
    @extend_schema(tags=["staff"], request=out.ConfirmInput, responses={200: out.ConfirmOutput, **ERRORS})
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
    @extend_schema(
        tags=["staff"],
        parameters=[out.DecisionQuery],
        responses={200: out.DecisionOutput(many=True), **ERRORS},
    )
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
    @extend_schema(
        tags=["staff"],
        parameters=[
            OpenApiParameter("status", str, enum=["held", "released", "rejected"]),
            OpenApiParameter("offset", int),
        ],
        responses={200: out.HeldActionOutput(many=True), **ERRORS},
    )
    def get(self, request):
        """Actions held for review (by default those still waiting)."""
        query = _valid(out.HeldQuery, request.query_params.dict())
        rows = _page(HeldAction.objects.filter(status=query["status"]), query["offset"])
        return Response(out.HeldActionOutput(rows, many=True).data)


class HeldDecideApi(StaffApi):
    verdict = ""

    @extend_schema(tags=["staff"], request=None, responses={200: out.HeldActionOutput, **ERRORS})
    def post(self, request, held_id: int):
        held = get_object_or_404(HeldAction, pk=held_id)
        decide = services.held_release if self.verdict == "release" else services.held_reject
        if not decide(held=held, by=request.user):
            raise InvalidAction(f"action {held.action_id} was already {held.status}")
        held.refresh_from_db()
        return Response(out.HeldActionOutput(held).data)


class BanListApi(StaffApi):
    @extend_schema(
        tags=["staff"],
        parameters=[out.BanQuery],
        responses={200: out.BanOutput(many=True), **ERRORS},
    )
    def get(self, request):
        query = _valid(out.BanQuery, request.query_params.dict())
        bans = Ban.objects.all()
        if "user_id" in query:
            bans = bans.filter(user_id=query["user_id"])
        rows = _page(bans, query["offset"])
        return Response(out.BanOutput(rows, many=True).data)

    @extend_schema(tags=["staff"], request=out.BanInput, responses={201: out.BanOutput, **ERRORS})
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
    @extend_schema(tags=["staff"], request=None, responses={200: out.BanOutput, **ERRORS})
    def post(self, request, ban_id: int):
        ban = get_object_or_404(Ban, pk=ban_id)
        services.ban_lift(ban=ban, by=request.user)
        ban.refresh_from_db()
        return Response(out.BanOutput(ban).data)


class ScoreRevertApi(StaffApi):
    @extend_schema(tags=["staff"], request=out.RevertInput, responses={200: out.RevertOutput, **ERRORS})
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
    @extend_schema(tags=["staff"], responses={200: out.RuleOutput(many=True), **ERRORS})
    def get(self, request):
        """Every rule with its mode and threshold."""
        for code, spec in RULES.items():
            Rule.objects.get_or_create(code=code, defaults={"description": spec.description})
        return Response(out.RuleOutput(Rule.objects.filter(code__in=RULES), many=True).data)


class RuleSetApi(StaffApi):
    @extend_schema(tags=["staff"], request=out.RuleInput, responses={200: out.RuleOutput, **ERRORS})
    def put(self, request, code: str):
        """Switch a rule off, to shadow mode or to enforce; `threshold` null: the setting's."""
        if code not in RULES:
            raise NotFound(f"no rule named {code!r}")
        data = _valid(out.RuleInput, request.data)
        rule = services.rule_mode_set(
            code=code, mode=data["mode"], threshold=data["threshold"], by=request.user
        )
        return Response(out.RuleOutput(rule).data)
