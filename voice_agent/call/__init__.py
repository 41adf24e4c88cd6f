"""The live call: the session that runs one media stream, the Conversation (greet, take the
message, ask for consent, say goodbye) and the wrap-up that stores what the call produced."""
