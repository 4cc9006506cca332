"""Entries nobody has to remember to write: sign-ins and sign-outs, and every change to who may do what."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from audit import trail
from audit.models import Action

# The flags of a user that grant or take away permissions.
USER_FLAGS = ("is_superuser", "is_staff", "is_active")
RELATIONS: dict[Any, str] = {}


def connect() -> None:
    from guardian.models import GroupObjectPermission, UserObjectPermission
    from knox.models import AuthToken

    user_model = get_user_model()
    user_logged_in.connect(_logged_in, dispatch_uid="audit-login")
    user_logged_out.connect(_logged_out, dispatch_uid="audit-logout")
    user_login_failed.connect(_login_failed, dispatch_uid="audit-login-failed")
    RELATIONS.update({user_model.user_permissions.through: "user permissions",
                      user_model.groups.through: "group membership", Group.permissions.through: "group permissions"})
    for relation, name in RELATIONS.items():
        m2m_changed.connect(_memberships_changed, sender=relation, dispatch_uid=f"audit-{name}")
    pre_save.connect(_user_flags_changed, sender=user_model, dispatch_uid="audit-user-flags")
    post_save.connect(_token_issued, sender=AuthToken, dispatch_uid="audit-token-issued")
    post_delete.connect(_token_revoked, sender=AuthToken, dispatch_uid="audit-token-revoked")
    for model in (UserObjectPermission, GroupObjectPermission):
        post_save.connect(_object_permission_granted, sender=model, dispatch_uid=f"audit-grant-{model.__name__}")
        post_delete.connect(_object_permission_removed, sender=model, dispatch_uid=f"audit-drop-{model.__name__}")


def _meta(request: Any) -> Any:
    return getattr(request, "META", None)


def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    trail.record(Action.LOGIN, actor=user, obj=user, meta=_meta(request))


def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        trail.record(Action.LOGOUT, actor=user, obj=user, meta=_meta(request))


def _login_failed(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    # Only the name tried: Django has already masked the password, and it is never kept anyway.
    tried = str(credentials.get("username", ""))[:150]
    trail.record(Action.LOGIN_FAILED, object_type="user", object_repr=tried, detail={"username": tried},
                 meta=_meta(request))


def _memberships_changed(sender: Any, instance: Any, action: str, model: Any, pk_set: set | None,
                         **kwargs: Any) -> None:
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    names = sorted(str(item) for item in model.objects.filter(pk__in=pk_set)) if pk_set else []
    trail.record(Action.PERMISSION_CHANGE, obj=instance,
                 detail={"change": action.removeprefix("post_"), "relation": RELATIONS[sender], "items": names})


def _user_flags_changed(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    if instance.pk is None or update_fields is not None and not set(update_fields) & set(USER_FLAGS):
        return
    before = sender.objects.filter(pk=instance.pk).values(*USER_FLAGS).first()
    if before is None:
        return
    changed = {flag: getattr(instance, flag) for flag in USER_FLAGS if before[flag] != getattr(instance, flag)}
    if changed:
        trail.record(Action.PERMISSION_CHANGE, obj=instance, detail={"change": "flags", "set": changed})


def _object_permission(instance: Any, change: str) -> None:
    holder = getattr(instance, "user", None) or getattr(instance, "group", None)
    trail.record(Action.PERMISSION_CHANGE, object_type=instance.content_type.model, object_id=instance.object_pk,
                 object_repr=str(instance.content_object or instance.object_pk),
                 detail={"change": change, "permission": instance.permission.codename,
                         "holder": f"{'group' if hasattr(instance, 'group') else 'user'} {holder}"})


def _object_permission_granted(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if created:
        _object_permission(instance, "grant")


def _object_permission_removed(sender: Any, instance: Any, **kwargs: Any) -> None:
    _object_permission(instance, "revoke")


def _token_issued(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    # Neither the digest (its primary key) nor token_key (the token's first characters) is recorded.
    if created:
        trail.record(Action.TOKEN_ISSUE, object_type="user", object_id=instance.user_id,
                     object_repr=_holder(instance), detail={"expires": str(instance.expiry or "never")})


def _token_revoked(sender: Any, instance: Any, **kwargs: Any) -> None:
    trail.record(Action.TOKEN_REVOKE, object_type="user", object_id=instance.user_id, object_repr=_holder(instance),
                 detail={"issued": str(instance.created)})


def _holder(token: Any) -> str:
    user = token._state.fields_cache.get("user")  # no query for a user being deleted with its tokens
    return str(user) if user is not None else f"user {token.user_id}"
