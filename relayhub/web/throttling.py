"""The operators' rate limit on the API (answer 429); relay keys have their own (``relayhub.relay.throttling``)."""

from rest_framework.throttling import UserRateThrottle


class OperatorThrottle(UserRateThrottle):
    scope = "operator"
