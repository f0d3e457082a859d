"""On PostgreSQL the audit log refuses UPDATE and DELETE in the database itself, whatever the
code path (a bulk .update(), a shell, a bug). One update stays possible: the actor's id
becoming NULL when that account is deleted (the name stays in actor_name)."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION antifraud_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL AND OLD.actor_id IS NOT NULL
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'antifraud_audit is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER antifraud_audit_append_only BEFORE UPDATE OR DELETE ON antifraud_audit
    FOR EACH ROW EXECUTE FUNCTION antifraud_audit_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS antifraud_audit_append_only ON antifraud_audit;
DROP FUNCTION IF EXISTS antifraud_audit_append_only();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("antifraud", "0004_keep_evidence")]

    operations = [migrations.RunPython(create, drop)]
