from engine import signals

signals.hold()  # `python -m engine`: a stop signal from here on is answered in one line (engine.cli.entry)

from engine.cli import entry  # noqa: E402

entry()
