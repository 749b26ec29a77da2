import os
import secrets

from .base import *
from .base import CELERY_BEAT_SCHEDULE

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The test outbox; a server process a browser test starts writes files it can read instead.
EMAIL_BACKEND = os.environ.get(
    "TEST_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend"
)
EMAIL_FILE_PATH = os.environ.get("TEST_EMAIL_FILE_PATH") or None
# Each test run, and each xdist worker in it, gets its own Celery queue and Redis key
# prefixes; processes the tests start inherit the run id through the environment.
_RUN = os.environ.setdefault("SDLAB_TEST_RUN", secrets.token_hex(4))
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
CELERY_TASK_DEFAULT_QUEUE = f"sdlab-test-{_RUN}-{_WORKER}"
CACHES["default"]["KEY_PREFIX"] = f"sdlab-test-{_RUN}-{_WORKER}"
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"sdlab-test-{_RUN}-{_WORKER}"
CELERY_BEAT_SCHEDULE.clear()
