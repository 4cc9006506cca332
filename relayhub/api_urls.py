from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from assignments.api import RelayViewSet
from audit.api import AuditEntryViewSet
from commands.api import CommandViewSet
from commands.approval_api import ApprovalViewSet
from commands.rpc import RpcCommandView, RpcExecView
from configpush.api import ConfigPushViewSet
from credentials.api import SharedCredentialViewSet
from fleet.api import SSHTargetViewSet
from fleet.batch_api import BatchViewSet
from notifications.api import ChannelViewSet, DeliveryViewSet, RuleViewSet
from runbooks.api import JobTemplateViewSet
from runbooks.schedule_api import TemplateScheduleViewSet

router = DefaultRouter()
router.register("relays", RelayViewSet, basename="relay")
router.register("commands", CommandViewSet, basename="command")
router.register("batches", BatchViewSet, basename="batch")
router.register("approvals", ApprovalViewSet, basename="approval")
router.register("targets", SSHTargetViewSet, basename="target")
router.register("shared-credentials", SharedCredentialViewSet, basename="shared-credential")
router.register("config-pushes", ConfigPushViewSet, basename="config-push")
router.register("templates", JobTemplateViewSet, basename="template")
router.register("schedules", TemplateScheduleViewSet, basename="schedule")
router.register("notification-channels", ChannelViewSet, basename="notification-channel")
router.register("notification-rules", RuleViewSet, basename="notification-rule")
router.register("notification-deliveries", DeliveryViewSet, basename="notification-delivery")
router.register("audit", AuditEntryViewSet, basename="audit-entry")

urlpatterns = [
    path("rpc/exec", RpcExecView.as_view(), name="rpc-exec"),
    re_path(r"^rpc/commands/(?P<command_id>[^/]+)$", RpcCommandView.as_view(), name="rpc-command"),
    *router.urls,
]
