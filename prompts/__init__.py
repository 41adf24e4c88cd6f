"""Data, not code: the system prompt, the consent script versions (``consent/``) and the SMS
templates (``sms/``). Shipped in the wheel; read with ``importlib.resources.files("prompts")``."""
