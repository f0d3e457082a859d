from django.db import migrations


def global_board_create(apps, schema_editor):
    Board = apps.get_model("leaderboard", "Board")
    Board.objects.get_or_create(
        code="global",
        defaults={"title": "All time", "operator": "sum", "order": "desc", "window": "all_time"},
    )


class Migration(migrations.Migration):
    dependencies = [("leaderboard", "0001_boards")]

    operations = [migrations.RunPython(global_board_create, migrations.RunPython.noop)]
