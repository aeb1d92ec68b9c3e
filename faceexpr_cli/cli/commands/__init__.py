"""One module per command or group. Each defines ``register(app)``; ``cli.app`` imports them all.

Keep these modules light at import time (typer only): heavy imports belong inside command bodies, so that
``fx --help`` stays instant.
"""
