from django.db import migrations


def create_rules(apps, schema_editor):
    from antifraud.rules import RULES

    Rule = apps.get_model("antifraud", "Rule")
    for code, spec in RULES.items():
        Rule.objects.get_or_create(code=code, defaults={"mode": "enforce", "description": spec.description})


class Migration(migrations.Migration):
    dependencies = [("antifraud", "0002_rules_flags_reviews")]

    operations = [migrations.RunPython(create_rules, migrations.RunPython.noop)]
