"""The project package: wiring, and the kits the apps are built from.

Wiring: settings (and settings_production), the URL confs (``urls``, ``relay_urls``
for the relay protocol, ``api_urls`` for the operator API), ``asgi``/``wsgi``,
the Celery app, the ``relayhub`` app's config, system checks, migration and
management commands (operators' API tokens), ``private_files`` for var/,
``metrics_view`` (``/metrics``) and ``serve`` (uvicorn with the metrics directory readied).
Subpackages: ``relay`` (relay protocol kit), ``web`` (web kit), ``admin_site``.
"""

from relayhub.celery import app as celery_app

__all__ = ["celery_app"]
