"""Settings read on every request, without Django's lazy proxy on each read.

`settings.X` goes through LazyObject.__getattribute__, a Python method: ~0.35 us a read,
and the score path read a dozen of them per request. `hot.X` reads the same value; the
first read copies it into this object, where the next ones are plain attribute reads. A
change made through override_settings (the tests' `settings` fixture included) sends
`setting_changed`, which drops the copy.
"""

from __future__ import annotations

from django.conf import settings
from django.core.signals import setting_changed


class HotSettings:
    def __getattr__(self, name: str):
        value = getattr(settings, name)
        self.__dict__[name] = value
        return value


hot = HotSettings()


def _setting_changed(*, setting: str, **kwargs) -> None:
    hot.__dict__.pop(setting, None)


setting_changed.connect(_setting_changed)
