from django.db import models  # noqa: F401  (tutorials, steps and checks arrive with the tutorials issue)
