"""The web edge: the FastAPI app, Twilio's voice and SMS webhooks, TwiML and a
local server for the demo and tests."""
