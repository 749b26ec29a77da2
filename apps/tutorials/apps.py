from django.apps import AppConfig


class TutorialsConfig(AppConfig):
    name = "apps.tutorials"
    label = "tutorials"
