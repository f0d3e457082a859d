from django.db import migrations

DEMO_ACTION_TYPES = [
    ("quest", 1, 100, "Finish a quest."),
    ("match_win", 10, 200, "Win a match."),
    ("level_up", 50, 1000, "Reach the next level."),
    ("daily_login", 1, 10, "First sign-in of the day."),
    ("achievement", 100, 1000, "Unlock an achievement."),
]


def create(apps, schema_editor):
    ActionType = apps.get_model("scores", "ActionType")
    for name, low, high, description in DEMO_ACTION_TYPES:
        ActionType.objects.get_or_create(
            name=name, defaults={"min_points": low, "max_points": high, "description": description}
        )


def remove(apps, schema_editor):
    ActionType = apps.get_model("scores", "ActionType")
    ActionType.objects.filter(name__in=[row[0] for row in DEMO_ACTION_TYPES]).delete()


class Migration(migrations.Migration):
    dependencies = [("scores", "0001_initial")]
    operations = [migrations.RunPython(create, remove)]
