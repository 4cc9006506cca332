from runbooks import admin_templates, schedule_admin  # noqa: F401 - registers templates, launches and schedules
