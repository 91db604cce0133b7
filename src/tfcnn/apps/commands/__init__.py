"""CLI commands of individual features, each module exposing ``register(app)``.

``tfcnn.apps.cli.COMMAND_MODULES`` lists the modules to load; shared options, consoles and
the ``user_errors`` decorator come from :mod:`tfcnn.apps.cli`.
"""
