"""Drop DRF's token table: it held operator API tokens in plain text, usable from a database dump.

Operator tokens are knox's now (only a digest stored); old tokens stop working
either way, and this takes them out of the database and its future backups.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("knox", "0009_extend_authtoken_field")]

    operations = [
        migrations.RunSQL("DROP TABLE IF EXISTS authtoken_token", reverse_sql=migrations.RunSQL.noop),
    ]
