import os

from .base import *
from .base import CELERY_BEAT_SCHEDULE

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Each xdist worker gets its own queue and key prefix on the shared Redis.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
CELERY_TASK_DEFAULT_QUEUE = f"sdlab-test-{_WORKER}"
CACHES["default"]["KEY_PREFIX"] = f"sdlab-test-{_WORKER}"
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"sdlab-test-{_WORKER}"
CELERY_BEAT_SCHEDULE.clear()
