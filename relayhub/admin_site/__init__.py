"""The admin site: the operators' portal, with the dashboard as its index.

``site`` is the AdminSite and its app config (in INSTALLED_APPS in place of
``django.contrib.admin``), ``dashboard`` what the index shows and ``charts`` the
geometry of its chart, ``tokens`` the admin of operators' API tokens. Each
app registers the admin pages of its own models in its ``admin`` module.
"""
