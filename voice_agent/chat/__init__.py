"""The brain that takes the message: the ChatModel port, the scripted interviewer, the OpenAI
model, the guardrails on what a model may say, and per-call failover between them."""
