from django.db import models  # noqa: F401  (enrolments and results arrive with the progress issue)
