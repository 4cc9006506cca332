import os

from django.core.wsgi import get_wsgi_application

from relayhub.checks import refuse_to_serve_with_errors

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relayhub.settings")
application = get_wsgi_application()
refuse_to_serve_with_errors()
