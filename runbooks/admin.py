from runbooks import admin_templates  # noqa: F401 - registers the job template and launch admins
