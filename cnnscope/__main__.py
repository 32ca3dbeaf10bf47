"""``python -m cnnscope`` = ``cnnscope``."""
from .cli import run

run()
