"""``python -m voice_agent`` runs the receptionist command."""

from voice_agent.cli import main

raise SystemExit(main())
