"""Operators' API tokens in the admin: who holds one and until when; deleting one revokes it.

knox's own admin would also make tokens and pass the new key to the next page
in a message (a cookie); here tokens are made only by ``drf_create_token``,
which prints the key once. The digest in the URLs is a SHA-512 of the token,
useless as a token.
"""

from django.contrib import admin
from django.http import HttpRequest
from knox.models import AuthToken

admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("user", "created", "expiry")
    list_filter = ("created", "expiry")
    search_fields = ("user__username",)
    fields = ("user", "created", "expiry")
    readonly_fields = fields
    ordering = ("-created",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuthToken | None = None) -> bool:
        return False
