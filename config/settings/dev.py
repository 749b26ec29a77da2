from .base import *  # noqa: F403
from .base import env_bool

DEBUG = env_bool("DEBUG", True)
LOG_FORMAT = "text"
LOGGING["handlers"]["console"]["formatter"] = "text"  # noqa: F405
