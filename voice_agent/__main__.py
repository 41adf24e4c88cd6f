"""``python -m voice_agent`` runs the receptionist command."""

from voice_agent.cli.main import main

raise SystemExit(main())
