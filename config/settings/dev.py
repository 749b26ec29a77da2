from .base import *
from .base import env_bool

DEBUG = env_bool("DEBUG", True)
LOG_FORMAT = "text"
LOGGING["handlers"]["console"]["formatter"] = "text"
