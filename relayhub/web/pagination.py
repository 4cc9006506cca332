from rest_framework.pagination import LimitOffsetPagination


class CappedPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500
